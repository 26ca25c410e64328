"""Graph construction on the whole detector: geometric layer pairs vs metric learning (+ filter).

    python scripts/graph_construction_table.py --out RUN              # simulates, trains, measures
    python scripts/graph_construction_table.py --out RUN --input EVENTS_DIR   # measure on these events
    python scripts/graph_construction_table.py --out RUN --reuse      # keep RUN's trained stages
    python scripts/graph_construction_table.py --out RUN --experiment experiments/whole_event/filter.py

Simulates `--train-events` events at `--train-pileup` (seed + 100) to train the embedding
and then the edge filter on its graphs (both as `--experiment` sets them, by default
experiments/graphs/metric_all.py:filter; with cells when its node features use them), writing
RUN/embedding.npz and RUN/filter.npz; then builds the `--events` held-out events (seed) with
  * the geometric construction of the whole detector (selection 'all', geometric layer pairs)
    at its default cuts, and at the loosest-to-tightest phi_slope_max scan's cheapest cut whose
    pT > 1 GeV efficiency still reaches the metric graph's ("same efficiency");
  * the metric-learning graph at each `--k-max`, and at the last one followed by the filter.
Rows: efficiency and purity for pT > 1 GeV particles (segments and edges of hits of particles
with pT >= 1 GeV, noise excluded), the same over all hits, edges per event and CPU seconds per
event (process time, run it with OMP_NUM_THREADS=1 for one core) of the construction alone
(hit selection, edge search, filter) and of the whole build_event (+ truth labels, statistics,
features). Writes RUN/table.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from gnntrack.config import load_config
from gnntrack.detector.simulate import default_simulation_config, event_rng, generate_particles, simulate_event
from gnntrack.graphs.build import build_event, find_graph_edges, prepare, select_nodes
from gnntrack.graphs.config import default_graph_config, event_parts
from gnntrack.graphs.filter import filter_edges, save_filter
from gnntrack.graphs.fit import fit_embedding, fit_filter
from gnntrack.graphs.metric_learning import save_embedding
from gnntrack.graphs.report import merge_stats, summarize
from gnntrack.io.atomic import write_json_atomic
from gnntrack.io.trackml import list_event_prefixes, read_event

EXPERIMENT = str(Path(__file__).resolve().parents[1] / "experiments" / "graphs" / "metric_all.py") + ":filter"
# phi_slope_max (rad/mm) scanned for the geometric graph with the metric graph's efficiency.
SLOPE_SCAN = (0.0007, 0.0005, 0.0004, 0.00035, 0.000325, 0.0003, 0.00025, 0.0002, 0.00015)


def simulate(n: int, pileup: float, seed: int, cells: bool = False) -> list:
    """`n` events at `pileup` (event k from event_rng(seed, k)), with cell clusters if `cells`."""
    config = default_simulation_config()
    config.pileup, config.cells = float(pileup), bool(cells)
    events = []
    for i in range(n):
        rng = event_rng(seed, i)
        events.append(simulate_event(generate_particles(rng, config), rng, config, event_id=1000 + i))
    return events


def measure(name: str, events, config) -> dict:
    """One table row: build every event with `config` and summarise."""
    config, layers, pairs = prepare(config)
    stats, cpu, construction = [], 0.0, 0.0
    for event in events:
        t0 = time.process_time()
        nodes = select_nodes(event, config, layers)
        senders, receivers = find_graph_edges(nodes, pairs, config)
        if config.filter.path:
            filter_edges(nodes, senders, receivers, config)
        t1 = time.process_time()
        stats.append(build_event(event, config, layers, pairs)[1])
        cpu += time.process_time() - t1
        construction += t1 - t0
    s = summarize(merge_stats(stats), seconds=cpu)
    pt1 = s["by_pt_min"]["1"]
    row = {"name": name, "efficiency_pt1": pt1["efficiency"], "purity_pt1": pt1["purity"],
           "efficiency": s["efficiency"], "purity": s["purity"], "mean_edges": s["mean_edges"],
           "mean_nodes": s["mean_nodes"], "cpu_seconds_per_event": s["seconds_per_event"],
           "construction_cpu_seconds_per_event": construction / len(events)}
    if "filter" in s:
        f = s["filter"]
        row.update(filter_reduction=f["reduction"], filter_kept_efficiency_pt1=f["by_pt_min"]["1"]["kept_efficiency"],
                   filter_kept_efficiency=f["kept_efficiency"])
    print(row, flush=True)
    return row


def train_stages(out: Path, train, reuse: bool, experiment: str, overrides) -> tuple[Path, Path]:
    """RUN/embedding.npz and RUN/filter.npz, trained unless `reuse` finds them."""
    emb_path, filter_path = out / "embedding.npz", out / "filter.npz"
    config = load_config(experiment, overrides)
    if not (reuse and emb_path.exists()):
        t0 = time.perf_counter()
        save_embedding(emb_path, fit_embedding(train, config), config)
        print(f"embedding trained in {time.perf_counter() - t0:.0f} s", flush=True)
    config.metric.embedding = str(emb_path)
    if not (reuse and filter_path.exists()):
        t0 = time.perf_counter()
        save_filter(filter_path, fit_filter(train, config), config)
        print(f"filter trained in {time.perf_counter() - t0:.0f} s", flush=True)
    return emb_path, filter_path


def format_rows(rows) -> str:
    head = ("| construction | efficiency pT > 1 | purity pT > 1 | efficiency (all) | purity (all) | "
            "edges / event | CPU s / event: construction | CPU s / event: whole build_event |")
    lines = [head, "|" + " --- |" * 8]
    for r in rows:
        lines.append(f"| {r['name']} | {r['efficiency_pt1']:.4f} | {r['purity_pt1']:.4f} | {r['efficiency']:.4f} | "
                     f"{r['purity']:.4f} | {r['mean_edges']:,.0f} | {r['construction_cpu_seconds_per_event']:.2f} | "
                     f"{r['cpu_seconds_per_event']:.2f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="run directory (trained stages, table.json)")
    parser.add_argument("--input", help="held-out TrackML events (default: simulate --events)")
    parser.add_argument("--events", type=int, default=2)
    parser.add_argument("--pileup", type=float, default=200.0)
    parser.add_argument("--train-events", type=int, default=2)
    parser.add_argument("--train-pileup", type=float, default=200.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--reuse", action="store_true", help="keep RUN's embedding.npz / filter.npz")
    parser.add_argument("--k-max", type=lambda v: [int(k) for k in v.split(",")], default=[64, 128],
                        help="metric.k_max values to measure, comma-separated (the last one is filtered)")
    parser.add_argument("--experiment", default=EXPERIMENT,
                        help="graph config of the stages, with its filter settings (default: metric_all.py:filter)")
    parser.add_argument("overrides", nargs="*", help="the experiment's overrides, e.g. metric.k_max=48")
    args = parser.parse_args(argv)

    out = Path(args.out)
    parts = event_parts(load_config(args.experiment, args.overrides))
    cells = "cells" in parts
    train = simulate(args.train_events, args.train_pileup, args.seed + 100, cells)
    emb_path, filter_path = train_stages(out, train, args.reuse, args.experiment, args.overrides)
    del train
    if args.input:
        events = [read_event(p, parts=parts) for p in list_event_prefixes(args.input)[:args.events]]
    else:
        events = simulate(args.events, args.pileup, args.seed, cells)

    rows = []
    for k in args.k_max:
        metric = load_config(args.experiment, args.overrides)
        metric.filter.path = ""
        metric.metric.embedding, metric.metric.k_max = str(emb_path), k
        rows.append(measure(f"metric learning (k_max {k})", events, metric))
    filtered = load_config(args.experiment, args.overrides)
    filtered.metric.embedding, filtered.filter.path = str(emb_path), str(filter_path)
    filtered.metric.k_max = args.k_max[-1]
    rows.append(measure(f"metric learning (k_max {args.k_max[-1]}) + filter", events, filtered))

    geometric = default_graph_config()
    geometric.selection = "all"
    rows.append(measure(f"geometric (phi_slope_max {geometric.phi_slope_max:g})", events, geometric))
    target = rows[len(args.k_max) - 1]["efficiency_pt1"]  # the largest k_max
    matched = None
    for slope in SLOPE_SCAN:  # tighter cuts: fewer edges, lower efficiency; keep the last one >= target
        geometric.phi_slope_max = slope
        row = measure(f"geometric (phi_slope_max {slope:g})", events, geometric)
        if row["efficiency_pt1"] < target:
            rows.append(row)
            break
        matched = row
    if matched is not None:
        matched["name"] += ", same pT > 1 efficiency"
        rows.insert(len(args.k_max) + 2, matched)

    source = args.input or f"{args.events} simulated events, mu={args.pileup:g}, seed={args.seed}"
    print(f"whole detector (pixel + strips), every hit, no pT cut; {source}; embedding and filter "
          f"({args.experiment}) trained on {args.train_events} events at mu={args.train_pileup:g}")
    print(format_rows(rows))
    write_json_atomic(out / "table.json", {"source": source, "experiment": args.experiment,
                                           "train_events": args.train_events,
                                           "train_pileup": args.train_pileup, "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
