#!/usr/bin/env python
"""A newly written message function, twice: with `gnntrack.nn.ops` and with `jax.ops.segment_sum`.

    python scripts/bench_message_ops.py                   # 20k nodes, 80k edges, hidden 64
    python scripts/bench_message_ops.py --repeats 7 --steps 5 --iters 4

The message: a weighted mean of neighbour features with a learned per-edge gate, in both
directions, m_n = [Σ_in g·x_src / (Σ_in g + ε), Σ_out g·x_dst / (Σ_out g + ε)], g = σ(a·x_src +
b·x_dst + c). It sits in a small edge classifier (not a gnntrack built-in): x = tanh(W·raw);
`--iters` rounds of { gate, message, x += Dense(tanh(Dense([x, m]))) }; edge logits from the two
endpoints. Variants, identical parameters and function (the script checks the losses agree):

  * xla:       the message written with jax.ops.segment_sum and plain indexing;
  * ops:       the same lines with ops.gather_mean (each op groups its edges itself);
  * ops+group: ops with the two edge groupings made once per step (ops.group) and reused by
               every iteration and op.

Timed: the full train step (forward + backward + Adam update, jitted, buffers donated) and the
inference step (forward only). Each repeat times every variant back to back (median of --steps
calls after --warmup), so the ratios compare like with like on a busy machine; the table gives
the median over repeats of each time and of each ratio to xla. The kernels run only on CPU with
AVX2 + FMA (see gnntrack.nn.ops); elsewhere "ops" is the XLA form and the ratios are ~1.
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import statistics

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from gnntrack.bench import make_train_step, median_seconds, random_graph
from gnntrack.nn import cpu_kernels, ops

EPS = 1e-6


def gated_mean_xla(x, gate, senders, receivers, groups=None):
    """The message with jax.ops.segment_sum: x [N, H], gate [E] -> [N, 2H]."""
    del groups
    n = x.shape[0]

    def mean(src, dst):
        total = jax.ops.segment_sum(gate[:, None] * x[src], dst, num_segments=n)
        norm = jax.ops.segment_sum(gate, dst, num_segments=n)
        return total / (norm[:, None] + EPS)

    return jnp.concatenate([mean(senders, receivers), mean(receivers, senders)], axis=-1)


def gated_mean_ops(x, gate, senders, receivers, groups=None):
    """The same message with gnntrack.nn.ops; `groups` = (by receiver, by sender) or None."""
    n = x.shape[0]
    by_r, by_s = groups if groups is not None else (None, None)
    incoming = ops.gather_mean(x, senders, receivers, n, gate, eps=EPS, groupings=(by_r, by_s))
    outgoing = ops.gather_mean(x, receivers, senders, n, gate, eps=EPS, groupings=(by_s, by_r))
    return jnp.concatenate([incoming, outgoing], axis=-1)


class GatedMeanClassifier(nn.Module):
    """Edge classifier around a gated-mean message; returns logits float32 [E]."""

    hidden: int = 64
    n_iters: int = 4
    variant: str = "xla"  # "xla" | "ops" | "ops+group"

    @nn.compact
    def __call__(self, graph):
        s, r = graph.senders, graph.receivers
        n = graph.nodes.shape[0]
        message = gated_mean_xla if self.variant == "xla" else gated_mean_ops
        groups = (ops.group(r, n), ops.group(s, n)) if self.variant == "ops+group" else None
        x = jnp.tanh(nn.Dense(self.hidden, name="embed")(graph.nodes))
        for i in range(self.n_iters):
            ends = nn.Dense(2, name=f"gate_{i}")(x)  # per-node sender / receiver gate terms
            gate = jax.nn.sigmoid(ends[s, 0] + ends[r, 1])
            m = message(x, gate, s, r, groups)
            h = jnp.tanh(nn.Dense(self.hidden, name=f"update_{i}_0")(jnp.concatenate([x, m], -1)))
            x = x + nn.Dense(self.hidden, name=f"update_{i}_1")(h)
        ends = nn.Dense(2, name="head")(x)
        return ends[s, 0] + ends[r, 1]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=20_000)
    parser.add_argument("--edges", type=int, default=80_000)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--iters", type=int, default=4, help="message-passing iterations")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=5, help="timed calls per repeat")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--variants", default="xla,ops,ops+group")
    parser.add_argument("--cpu-time", action="store_true",
                        help="time by this process's CPU time (all threads) instead of wall-clock: "
                             "steadier on a machine shared with other jobs")
    args = parser.parse_args(argv)

    print(f"jax {jax.__version__} on {jax.default_backend()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs; kernels: {cpu_kernels.status().label()}")
    print(f"graph: {args.nodes} nodes, {args.edges} edges; hidden {args.hidden}, {args.iters} iterations")
    print("load average (1, 5, 15 min) at start: " + ", ".join(f"{v:.1f}" for v in os.getloadavg()))
    graph, y = random_graph(args.nodes, args.edges, seed=0)
    graph = jax.tree_util.tree_map(jnp.asarray, graph)
    y, mask = jnp.asarray(y), jnp.ones_like(jnp.asarray(y))
    variants = args.variants.split(",")
    models = {v: GatedMeanClassifier(args.hidden, args.iters, v) for v in variants}
    params0 = models[variants[0]].init(jax.random.key(0), graph)["params"]
    tx = optax.adam(1e-3)

    state, train, infer = {}, {}, {}
    for v, model in models.items():
        params = jax.tree_util.tree_map(jnp.copy, params0)
        state[v] = (params, tx.init(params))
        train[v] = make_train_step(model, tx)
        infer[v] = jax.jit(lambda p, g, model=model: model.apply({"params": p}, g))
    losses = {}
    for v in variants:  # compile, and check that every variant computes the same function
        params, opt = state[v]
        params, opt, loss = train[v](params, opt, graph, y, mask)
        state[v] = (params, opt)
        losses[v] = float(loss)
    print("first-step losses: " + ", ".join(f"{v} {losses[v]:.6f}" for v in variants))
    assert all(abs(losses[v] - losses[variants[0]]) < 1e-4 for v in variants), losses

    def train_call(v):
        params, opt = state[v]
        params, opt, loss = train[v](params, opt, graph, y, mask)
        state[v] = (params, opt)
        return loss

    times = {(kind, v): [] for kind in ("train", "infer") for v in variants}
    for rep in range(args.repeats):  # interleaved: every variant in every repeat
        for v in variants:
            times["train", v].append(median_seconds(functools.partial(train_call, v),
                                                    args.warmup, args.steps, args.cpu_time))
            times["infer", v].append(median_seconds(lambda v=v: infer[v](state[v][0], graph),
                                                    args.warmup, args.steps, args.cpu_time))
    base = variants[0]
    print("load average (1, 5, 15 min) at end: " + ", ".join(f"{v:.1f}" for v in os.getloadavg()))
    clock = "CPU seconds" if args.cpu_time else "seconds"
    print(f"\nmedian over {args.repeats} interleaved repeats (each the median of {args.steps} calls)")
    print(f"{'step':<7}{'variant':<11}{clock:>12}{f'{base} / this':>14}")
    for kind in ("train", "infer"):
        for v in variants:
            ratios = [b / t for b, t in zip(times[kind, base], times[kind, v])]
            print(f"{kind:<7}{v:<11}{statistics.median(times[kind, v]):>12.4f}"
                  f"{statistics.median(ratios):>13.2f}x")


if __name__ == "__main__":
    main()
