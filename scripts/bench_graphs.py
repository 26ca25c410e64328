"""Benchmark hit-graph construction: all-pixel, no pT cut, mu = 200 events, one core.

    python scripts/bench_graphs.py                       # simulates 2 events (seed 1)
    python scripts/bench_graphs.py --input EVENTS_DIR    # or reads TrackML events
    python scripts/bench_graphs.py --config experiments/graphs/pixel_pt1.py

Prints one JSON object: per-event wall time and process CPU time (median / min over repeats;
CPU time is the fairer number on a shared machine) of the whole
`build_event` (selection, segment search, truth, features, statistics) and of its stages,
nodes, edges, and peak memory: the Python-tracked peak during one build (numpy allocations,
via tracemalloc) in MB and in bytes per edge (to show O(edges)), plus the process max RSS.
Goal: <= 1 s per event on one core. Threads are pinned to 1 before numpy loads.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402


def _events(args):
    if args.input:
        from gnntrack.io.trackml import list_event_prefixes, read_event

        return [read_event(p, parts=("hits", "truth", "particles")) for p in list_event_prefixes(args.input)[:args.events]]
    from gnntrack.detector.simulate import default_simulation_config, event_rng, generate_particles, simulate_event

    config = default_simulation_config()
    config.pileup = float(args.pileup)
    events = []
    for i in range(args.events):
        rng = event_rng(args.seed, i)
        events.append(simulate_event(generate_particles(rng, config), rng, config, event_id=1000 + i))
    return events


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", help="directory of TrackML events (default: simulate)")
    parser.add_argument("--events", type=int, default=2)
    parser.add_argument("--pileup", type=float, default=200.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--config", default="experiments/graphs/pixel_nocut.py")
    args = parser.parse_args(argv)

    from gnntrack.config import load_config
    from gnntrack.graphs import build as B
    from gnntrack.graphs import truth as T

    config, layers, pairs = B.prepare(load_config(args.config))
    events = _events(args)
    B.build_event(events[0], config, layers, pairs)  # warm-up (imports, caches)
    totals, cpu, stages, sizes, peaks = [], [], {"select": [], "edges": [], "truth": [], "features": []}, [], []
    for event in events:
        for _ in range(args.repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            graphs, stats = B.build_event(event, config, layers, pairs)
            totals.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        # stage timings (one pass, same work as build_event)
        t0 = time.perf_counter()
        nodes = B.select_nodes(event, config, layers)
        t1 = time.perf_counter()
        s, r = B.find_edges(nodes, pairs, config)
        t2 = time.perf_counter()
        tp = T.true_pairs(nodes.particle_id, nodes.layer, nodes.half, nodes.key)
        y = T.label_edges(s, r, tp, len(nodes))
        B.construction_stats(nodes, s, r, y, tp)
        t3 = time.perf_counter()
        B.make_hit_graph(nodes, s, r, y, config, event.event_id)
        t4 = time.perf_counter()
        for k, v in zip(stages, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            stages[k].append(v)
        sizes.append((stats["nodes"], stats["edges"], len(event.hits)))
        tracemalloc.start()
        B.build_event(event, config, layers, pairs)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    mean_edges = statistics.mean(e for _, e, _ in sizes)
    out = {
        "config": args.config,
        "source": args.input or f"simulated mu={args.pileup:g} seed={args.seed}",
        "events": len(events), "repeats": args.repeats,
        "hits_per_event": statistics.mean(h for _, _, h in sizes),
        "nodes_per_event": statistics.mean(n for n, _, _ in sizes),
        "edges_per_event": mean_edges,
        "seconds_per_event_median": statistics.median(totals),
        "seconds_per_event_min": min(totals),
        "cpu_seconds_per_event_median": statistics.median(cpu),
        "cpu_seconds_per_event_min": min(cpu),
        "stage_seconds_median": {k: statistics.median(v) for k, v in stages.items()},
        "peak_traced_mb": max(peaks) / 2 ** 20,
        "peak_traced_bytes_per_edge": max(peaks) / max(mean_edges, 1),
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "goal_seconds": 1.0,
        "threads": os.environ.get("OMP_NUM_THREADS"),
    }
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
