"""Whole-event tracking: train the learned graph stages, and the table of graph construction and
end-to-end numbers (markdown + JSON).

    python scripts/whole_event_table.py stages --out STAGES      # STAGES/embedding.npz, filter.npz
    python scripts/whole_event_table.py table --graphs GRAPHS/table.json \\
        --reconstruct RUN/reconstruct [--reconstruct OTHER/reconstruct ...] [--out table.json]

`stages` simulates the training events of experiments/whole_event/embedding.py (TRAIN_EVENTS at
TRAIN_PILEUP, seed `--seed`, with cells when its node features use them) and trains the
embedding (embedding.py) and then the edge filter on
its graphs (filter.py). `table` reads a graph-construction table (scripts/graph_construction_table.py's
table.json: geometric vs metric learning on the same events) and the whole_event.json of each
`gnntrack reconstruct` directory, prints both tables as markdown and writes them as JSON.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import time
from pathlib import Path

from gnntrack.config import load_config
from gnntrack.graphs.config import cell_feature_names
from gnntrack.graphs.filter import save_filter
from gnntrack.graphs.fit import fit_embedding, fit_filter
from gnntrack.graphs.metric_learning import save_embedding
from gnntrack.io.atomic import write_json_atomic

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "experiments" / "whole_event"
GOALS = {"trackml_score": 0.80, "efficiency_pt1": 0.90, "fake_rate": 0.05}


def _module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def train_stages(out: Path, n_events: int, pileup: float, seed: int, overrides=()) -> tuple[Path, Path]:
    """out/embedding.npz and out/filter.npz trained on `n_events` simulated events at `pileup`."""
    simulate = _module(ROOT / "scripts" / "graph_construction_table.py", "graph_construction_table").simulate
    config = load_config(EXPERIMENTS / "embedding.py", overrides)
    events = simulate(n_events, pileup, seed, cells=bool(cell_feature_names(config)))
    t0 = time.perf_counter()
    emb_path = save_embedding(out / "embedding.npz", fit_embedding(events, config), config)
    print(f"embedding trained in {time.perf_counter() - t0:.0f} s", flush=True)
    config = load_config(EXPERIMENTS / "filter.py", overrides)
    config.metric.embedding = str(emb_path)
    t0 = time.perf_counter()
    filter_path = save_filter(out / "filter.npz", fit_filter(events, config), config)
    print(f"filter trained in {time.perf_counter() - t0:.0f} s", flush=True)
    return emb_path, filter_path


def _f(x, digits: int = 4) -> str:
    return "-" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}f}"


def graph_rows(table: dict) -> list[dict]:
    """The graph-construction rows (name, efficiency and purity for pT > 1 and all, edges and CPU
    seconds per event, filter numbers where there is a filter)."""
    keys = ("name", "efficiency_pt1", "purity_pt1", "efficiency", "purity", "mean_edges", "cpu_seconds_per_event",
            "filter_reduction", "filter_kept_efficiency_pt1", "filter_kept_efficiency")
    return [{k: r.get(k) for k in keys} for r in table.get("rows", [])]


def chain_row(summary: dict, name: str) -> dict:
    """One end-to-end row from a whole_event.json."""
    keys = ("trackml_score", "trackml_score_ceiling", "efficiency_pt1", "efficiency_pt0p5", "fake_rate",
            "edges_per_event", "hits_per_event", "seconds_per_event", "n_events", "edge_precision", "edge_recall")
    return {"name": name, **{k: summary.get(k) for k in keys}}


def markdown(graphs: list[dict], chains: list[dict], source: str) -> str:
    lines = [f"Graph construction ({source}):", "",
             "| construction | efficiency pT > 1 | purity pT > 1 | efficiency (all) | edges / event | CPU s / event |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in graphs:
        lines.append(f"| {r['name']} | {_f(r['efficiency_pt1'])} | {_f(r['purity_pt1'])} | {_f(r['efficiency'])} | "
                     f"{r['mean_edges']:,.0f} | {_f(r['cpu_seconds_per_event'], 2)} |")
    lines += ["", "End to end (whole event: every hit, every pT; double-majority matching):", "",
              "| chain | TrackML score | ceiling: perfect tracks on the graph nodes | efficiency pT > 1 | efficiency pT > 0.5 | "
              "fake rate | edges / event | s / event |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in chains:
        lines.append(f"| {r['name']} | {_f(r['trackml_score'])} | {_f(r['trackml_score_ceiling'])} | "
                     f"{_f(r['efficiency_pt1'])} | {_f(r['efficiency_pt0p5'])} | {_f(r['fake_rate'])} | "
                     f"{r['edges_per_event']:,.0f} | {_f(r['seconds_per_event'], 1)} |")
    lines.append(f"| goal | >= {GOALS['trackml_score']} | | >= {GOALS['efficiency_pt1']} | | "
                 f"<= {GOALS['fake_rate']} | | |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    stages = sub.add_parser("stages", help="train the embedding and the filter")
    stages.add_argument("--out", required=True)
    stages.add_argument("--seed", type=int, default=101)
    stages.add_argument("--events", type=int, default=None, help="default: embedding.py's TRAIN_EVENTS")
    stages.add_argument("--pileup", type=float, default=None, help="default: embedding.py's TRAIN_PILEUP")
    stages.add_argument("overrides", nargs="*", help="graph config overrides, e.g. metric.steps=300")
    table = sub.add_parser("table", help="print the tables")
    table.add_argument("--graphs", required=True, help="table.json of scripts/graph_construction_table.py")
    table.add_argument("--reconstruct", action="append", default=[], metavar="DIR",
                       help="a gnntrack reconstruct output directory (repeatable); NAME=DIR names its row")
    table.add_argument("--out", default=None, help="write the tables as JSON here")
    args = parser.parse_args(argv)

    if args.mode == "stages":
        experiment = _module(EXPERIMENTS / "embedding.py", "whole_event_embedding")
        n = args.events if args.events is not None else experiment.TRAIN_EVENTS
        pileup = args.pileup if args.pileup is not None else experiment.TRAIN_PILEUP
        train_stages(Path(args.out), n, pileup, args.seed, args.overrides)
        return 0
    graphs_table = json.loads(Path(args.graphs).read_text(encoding="utf-8"))
    chains = []
    for item in args.reconstruct:
        name, sep, directory = item.rpartition("=")
        summary = json.loads((Path(directory) / "whole_event.json").read_text(encoding="utf-8"))
        g = summary["graph"]
        t = summary["tracks"]
        cut = f"cut {t['cut']:g}{' tuned on other events' if t.get('tuned_on') else ''}"
        default = f"{g['method']}{' + filter' if g.get('filter') else ''} -> GNN -> tracks ({t['method']}, {cut})"
        chains.append(chain_row(summary, name if sep else default))
    graphs = graph_rows(graphs_table)
    source = graphs_table.get("source", "")
    print(markdown(graphs, chains, source))
    result = {"graph_construction": {"source": source, "rows": graphs}, "end_to_end": chains, "goals": GOALS}
    print(json.dumps(result, indent=2))
    if args.out:
        write_json_atomic(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
