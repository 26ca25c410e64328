"""Whole-crossing inference: seconds and peak memory of a segment classifier on one LUXE-like
crossing's cone graph (no sections, no sampling).

    python scripts/luxe_inference.py                            # 70k positrons, fast form
    python scripts/luxe_inference.py --form reference --hidden 128 --iters 4
    python scripts/luxe_inference.py --graph GRAPH_DIR/event000001000.npz

The fast form (gnntrack.nn.fast) runs each network over row blocks, so its activations stay
~ one block per layer; the reference materialises [E, hidden] arrays per layer. Peak memory is
this process's maximum resident set (parameters initialised on the same graph included).
"""

from __future__ import annotations

import argparse
import resource
import time

import jax
import numpy as np

from gnntrack.detector.luxe import default_luxe_config, simulate_luxe_event
from gnntrack.detector.simulate import event_rng
from gnntrack.graphs.build import build_graph
from gnntrack.graphs.config import luxe_graph_config
from gnntrack.graphs.store import load_graph
from gnntrack.nn.fast.segment_classifier import FastSegmentClassifier
from gnntrack.nn.segment_classifier import SegmentClassifier


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graph", help="a graph file (.npz) instead of simulating a crossing")
    parser.add_argument("--particles", type=int, default=70_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--form", choices=("fast", "reference"), default="fast")
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--iters", type=int, default=4)
    args = parser.parse_args()
    if args.graph:
        graph = load_graph(args.graph).graph
    else:
        config = default_luxe_config()
        config.n_particles = args.particles
        graph = build_graph(simulate_luxe_event(event_rng(args.seed, 0), config), luxe_graph_config()).graph
    model = (FastSegmentClassifier if args.form == "fast" else SegmentClassifier)(hidden=args.hidden,
                                                                                  n_iters=args.iters)
    params = jax.jit(model.init)(jax.random.PRNGKey(0), graph)
    score = jax.jit(lambda p, g: jax.nn.sigmoid(model.apply(p, g)))
    t0 = time.perf_counter()
    np.asarray(score(params, graph))
    t1 = time.perf_counter()
    np.asarray(score(params, graph))
    t2 = time.perf_counter()
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
    print(f"{args.form} segment classifier, hidden {args.hidden}, {args.iters} iterations: "
          f"{graph.nodes.shape[0]} nodes, {graph.senders.shape[0]} edges; first call (compile + run) "
          f"{t1 - t0:.1f} s, next call {t2 - t1:.1f} s; peak RSS {peak_gb:.2f} GB")


if __name__ == "__main__":
    main()
