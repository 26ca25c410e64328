#!/usr/bin/env python
"""What padding to the bucket ladder costs in train-step time, on the quickstart's own batches.

    python scripts/padding_overhead.py                   # quickstart data (cached in ./quickstart)
    python scripts/padding_overhead.py --steps 8 --repeats 7 --workdir /tmp/qs

For the first --steps training batches of the quickstart experiment (same data, model, ladder and
batching as `gnntrack quickstart`, one device), times the jitted train step (forward, backward,
Adam) twice per batch: padded to its ladder rung, as training runs it, and padded only to its own
size (one padding node, no padding edges; a shape compiled for that batch alone). Calls are
interleaved, medians over --repeats. overhead = Σ padded time / Σ exact time − 1 (the goal:
<= 10 %). The data are simulated and cached on first use (~1-2 min), like the quickstart's.
"""

from __future__ import annotations

import argparse
import statistics
import time


def exact_ladder(batch):
    """A one-rung ladder that fits `batch` with no padding edge and one padding node."""
    from gnntrack.graphs.batching import Bucket, BucketLadder

    return BucketLadder([Bucket(n_edge=int(batch.n_real_edges.max()),
                                n_node=int(batch.n_real_nodes.max()) + 1)], edge_multiple=1,
                        node_multiple=1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", default="quickstart", help="where the quickstart data are cached")
    parser.add_argument("--steps", type=int, default=6, help="training batches to time")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per batch and shape")
    args = parser.parse_args(argv)

    from gnntrack import runtime

    runtime.reexec_with_hugepages()
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax
    from tqdm import tqdm

    from gnntrack.bench import make_train_step
    from gnntrack.configs.quickstart import quickstart_config
    from gnntrack.graphs.batching import batch_iterator, graph_slots, make_batch, make_ladder
    from gnntrack.nn.models import build_model, cpu_kernels_label
    from gnntrack.train.data import prepare_data

    config = quickstart_config()
    data = prepare_data(config, args.workdir)
    ladder = make_ladder(data.train, config.batching, 1, seed=config.seed)
    model = build_model(config.model)
    tx = optax.adam(1e-3)
    step = make_train_step(model, tx, donate=False)
    n_graph_pad = graph_slots(len(data.train), int(config.batching.graphs_per_step), 1)

    def device_args(batch):
        graph = jax.tree_util.tree_map(lambda a: jnp.asarray(a[0]), batch.graph)
        return graph, jnp.asarray(batch.y[0]), jnp.asarray(batch.edge_mask[0], jnp.float32)

    batches = []
    for batch in batch_iterator(data.train, config.batching, 1, ladder=ladder, seed=config.seed):
        exact = make_batch(data.train, batch.graph_ids[0][batch.graph_mask[0]], 1, exact_ladder(batch),
                           n_graph_pad)
        batches.append((batch, device_args(batch), device_args(exact)))
        if len(batches) == args.steps:
            break
    params = jax.jit(model.init)(jax.random.key(0), batches[0][1][0])["params"]
    opt_state = tx.init(params)

    def timed(graph, y, mask):
        start = time.perf_counter()
        jax.block_until_ready(step(params, opt_state, graph, y, mask))
        return time.perf_counter() - start

    rows = []
    for batch, padded, exact in tqdm(batches, desc="batches (compiles two shapes each)"):
        timed(*padded), timed(*exact)  # compile + warm up
        t_pad, t_exact = [], []
        for _ in range(args.repeats):
            t_pad.append(timed(*padded))
            t_exact.append(timed(*exact))
        rows.append((int(batch.n_real_edges[0]), batch.bucket.n_edge, statistics.median(t_exact),
                     statistics.median(t_pad)))

    print(f"# padding overhead, quickstart batches ({len(rows)} steps, medians of {args.repeats}; "
          f"{jax.devices()[0].device_kind}, CPU kernels {cpu_kernels_label(model)})")
    print(f"{'real edges':>10} {'rung edges':>10} {'exact (ms)':>11} {'padded (ms)':>12} {'overhead':>9}")
    for real, rung, t_exact, t_pad in rows:
        print(f"{real:>10} {rung:>10} {1e3 * t_exact:>11.1f} {1e3 * t_pad:>12.1f} {t_pad / t_exact - 1:>9.1%}")
    real = sum(r[0] for r in rows)
    padded = sum(r[1] for r in rows)
    total_exact, total_pad = sum(r[2] for r in rows), sum(r[3] for r in rows)
    print(f"edge utilisation (real / padded): {real / padded:.3f}")
    print(f"padding overhead (Σ padded / Σ exact - 1): {total_pad / total_exact - 1:.1%}  (goal <= 10 %)")
    return np.array(rows)


if __name__ == "__main__":
    main()
