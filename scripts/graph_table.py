"""The graph-construction table: full-pixel graphs per pT cut (interaction-network paper setting).

    python scripts/graph_table.py                          # simulates 3 mu = 200 events (seed 1)
    python scripts/graph_table.py --input EVENTS_DIR       # or any TrackML-format events
    python scripts/graph_table.py --json table.json

For each experiments/graphs/pixel_pt{2,1p5,1,0p7,0p5}.py config: segment efficiency (true
segments present as edges / all true segments among the selected hits), purity (true edges /
edges), mean edges and nodes per event, seconds per event; next to the anchor purities of the
interaction-network paper (geometric construction on TrackML pixel, efficiency 0.987).
"""

from __future__ import annotations

import argparse
import time

CONFIGS = (("pixel_pt2", 2.0, 0.198), ("pixel_pt1p5", 1.5, 0.118), ("pixel_pt1", 1.0, 0.043),
           ("pixel_pt0p7", 0.7, 0.016), ("pixel_pt0p5", 0.5, 0.010))
ANCHOR_EFFICIENCY = 0.987


def load_events(args):
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


def table_rows(events, configs=CONFIGS, directory="experiments/graphs", overrides=()):
    from gnntrack.config import load_config
    from gnntrack.graphs.build import build_event, prepare
    from gnntrack.graphs.report import merge_stats, summarize

    rows = []
    for name, pt_min, anchor in configs:
        config, layers, pairs = prepare(load_config(f"{directory}/{name}.py", overrides))
        t0 = time.perf_counter()
        stats = [build_event(e, config, layers, pairs)[1] for e in events]
        summary = summarize(merge_stats(stats), seconds=time.perf_counter() - t0)
        rows.append({"name": name, "pt_min": pt_min, "efficiency": summary["efficiency"],
                     "purity": summary["purity"], "anchor_purity": anchor,
                     "mean_edges": summary["mean_edges"], "mean_nodes": summary["mean_nodes"],
                     "mean_true_edges": summary["mean_true_edges"],
                     "seconds_per_event": summary["seconds_per_event"],
                     "phi_slope_max": float(config.phi_slope_max), "z0_max": float(config.z0_max)})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", help="directory of TrackML events (default: simulate)")
    parser.add_argument("--events", type=int, default=3)
    parser.add_argument("--pileup", type=float, default=200.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args(argv)

    from gnntrack.graphs.report import format_table

    events = load_events(args)
    rows = table_rows(events)
    source = args.input or f"{args.events} simulated events, mu={args.pileup:g}, seed={args.seed}"
    print(f"full-pixel graphs, {source}; anchor: interaction-network paper, efficiency {ANCHOR_EFFICIENCY}")
    print(format_table(rows))
    if args.json:
        from gnntrack.io.atomic import write_json_atomic

        write_json_atomic(args.json, {"source": source, "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
