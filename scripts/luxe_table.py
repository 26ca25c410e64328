"""LUXE-like crossings: hits per crossing, cone-graph efficiency and purity, exact-section
overhead and the purity of particle-sampled graphs, with CPU seconds per step.

    python scripts/luxe_table.py                         # 3 crossings of 70k positrons, seed 1
    python scripts/luxe_table.py --particles 10000 --crossings 5 --json table.json

Times are CPU seconds of this process (one core; no file I/O: the crossing is built in memory).
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np

from gnntrack.detector.luxe import default_luxe_config, simulate_luxe_event
from gnntrack.detector.simulate import event_rng
from gnntrack.graphs.build import build_event, prepare
from gnntrack.graphs.config import luxe_graph_config
from gnntrack.graphs.sampling import particle_sample_epoch


def crossing_row(k: int, args, prepared, sectioned) -> dict:
    config = default_luxe_config()
    config.n_particles = args.particles
    t0 = time.process_time()
    event = simulate_luxe_event(event_rng(args.seed, k), config, event_id=1000 + k)
    t1 = time.process_time()
    (full,), stats = build_event(event, *prepared)
    t2 = time.process_time()
    sections, _ = build_event(event, *sectioned)
    t3 = time.process_time()
    row = dict(hits=len(event.hits), nodes=full.n_nodes, edges=full.n_edges,
               efficiency=stats["found_segments"] / stats["true_segments"], purity=float(full.y.mean()),
               simulate_s=t1 - t0, graph_s=t2 - t1, sections_s=t3 - t2,
               section_node_overhead=sum(g.n_nodes for g in sections) / full.n_nodes,
               section_edge_overhead=sum(g.n_edges for g in sections) / full.n_edges)
    for fraction in args.fractions:
        sample = particle_sample_epoch([full], fraction, seed=args.seed, epoch=k)[0]
        row[f"purity_sampled_{fraction:g}"] = float(sample.y.mean())
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--particles", type=int, default=70_000)
    parser.add_argument("--crossings", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sections", type=int, default=8)
    parser.add_argument("--hops", type=int, default=4, help="halo hops = the model's iterations")
    parser.add_argument("--fractions", type=float, nargs="*", default=[0.1, 0.3, 0.5])
    parser.add_argument("--json", help="also write the rows and means here")
    args = parser.parse_args()
    prepared = prepare(luxe_graph_config())
    config = luxe_graph_config()
    config.exact_sections, config.section_hops = args.sections, args.hops
    sectioned = prepare(config)
    rows = [crossing_row(k, args, prepared, sectioned) for k in range(args.crossings)]
    mean = {key: float(np.mean([r[key] for r in rows])) for key in rows[0]}
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
    print(f"{args.crossings} crossing(s) of {args.particles} positrons (seed {args.seed}); "
          f"K = {args.sections} sections, {args.hops}-hop halo; peak RSS {peak_gb:.2f} GB")
    for key, value in mean.items():
        spread = np.std([r[key] for r in rows])
        print(f"  {key:26s} {value:12.4f}  (std {spread:.4f})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "rows": rows, "mean": mean, "peak_rss_gb": peak_gb}, f, indent=2)


if __name__ == "__main__":
    main()
