"""`gnntrack evaluate --workdir RUN --input EVENTS_DIR [--out DIR]`: tracks, TrackML score, report."""

from __future__ import annotations

import argparse
import math

HELP = "evaluate a trained run on TrackML events: edge metrics, tracks, TrackML score, efficiency, plots"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workdir", required=True, help="run directory (config.json, checkpoints/)")
    parser.add_argument("--input", required=True,
                        help="directory of TrackML events (hits, truth, particles; cells optional; csv or csv.gz)")
    parser.add_argument("--out", default=None, help="report directory (default: RUN/evaluation)")
    parser.add_argument("--checkpoint", default="best",
                        help="'best' (default; latest if no best is marked), 'latest' or a step number")
    parser.add_argument("--limit", type=int, default=0, help="evaluate only the first N events (0 = all)")
    parser.add_argument("--threshold", type=float, default=0.5, help="edge-score cut (default: %(default)s)")
    parser.add_argument("--method", choices=("walkthrough", "cc"), default="walkthrough",
                        help="track building: walkthrough (resolves branches, default) or connected components")
    parser.add_argument("--attach-min-edges", type=int, default=1,
                        help="walkthrough: put a left-over hit back into a track it has this many edges "
                             "above the cut to (0 = never; default: %(default)s)")
    parser.add_argument("--pt-min", type=float, default=1.0,
                        help="reconstructable particles: pT >= this (GeV; default: %(default)s)")
    parser.add_argument("--min-hits", type=int, default=3,
                        help="reconstructable particles: at least this many hits in the graph (default: %(default)s)")
    parser.add_argument("--eta-max", type=float, default=4.0, help="reconstructable particles: |eta| <= this")
    parser.add_argument("--graph", action="append", default=[], metavar="KEY=VALUE",
                        help="change the run's graph config for evaluation (repeatable), e.g. --graph pt_min=0 "
                             "to evaluate a model trained on truth-cut graphs on complete events")
    parser.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples of the events")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument("--no-submissions", action="store_true", help="do not write per-event submission CSVs")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--json", action="store_true",
                        help="print metrics.json's edge and tracks groups and its warnings as JSON")


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from gnntrack.errors import InputError
    from gnntrack.io.atomic import check_directory_path
    from gnntrack.tracks.evaluate import default_evaluation_config, evaluate_run

    config = default_evaluation_config()
    checkpoint = str(args.checkpoint)
    if checkpoint not in ("best", "latest") and not checkpoint.isdigit():
        raise InputError(f"--checkpoint must be 'best', 'latest' or a step number, got {args.checkpoint!r}")
    if not 0.0 <= args.threshold <= 1.0:
        raise InputError(f"--threshold must lie in [0, 1], got {args.threshold}")
    if not Path(args.input).is_dir():
        raise InputError(f"--input: directory not found: {args.input}")
    if args.out is not None:
        check_directory_path(args.out, "--out")
    config.checkpoint = checkpoint
    config.limit = max(int(args.limit), 0)
    config.threshold = float(args.threshold)
    config.method = args.method
    config.attach_min_edges = max(int(args.attach_min_edges), 0)
    config.matching.pt_min = float(args.pt_min)
    config.matching.min_hits = int(args.min_hits)
    config.matching.eta_max = float(args.eta_max)
    config.graph_overrides = tuple(args.graph)
    config.n_boot = max(int(args.n_boot), 1)
    config.plots = not args.no_plots
    config.write_submissions = not args.no_submissions
    config.progress = not args.no_progress
    metrics = evaluate_run(args.workdir, args.input, args.out, config=config)
    if args.json:
        print(json.dumps({"edge": metrics["edge"], "tracks": metrics["tracks"],
                          "warnings": metrics["warnings"]}, indent=2))
    else:
        print_metrics(metrics, args.out or str(Path(args.workdir) / "evaluation"))
    return 0


def print_metrics(metrics: dict, out_dir: str, console=None) -> None:
    """Headline edge and track metrics with their bootstrap intervals as a rich table."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    level = metrics.get("bootstrap", {}).get("level", 0.95)
    table = Table(title=f"gnntrack evaluate: {metrics['n_events']} events, checkpoint "
                        f"{metrics['run']['checkpoint']} (step {metrics['run']['step']})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_column(f"{level:.0%} interval (events)", justify="right")
    t = metrics["tracks"]
    rows = [("edge", k, metrics["edge"]) for k in ("accuracy", "precision", "recall", "f1", "auc")]
    # the ceiling (perfect tracks on the graph hits) puts the full-event score in context: truth-cut
    # graphs hold a small part of the event's weight
    rows += [("tracks", k, t) for k in ("trackml_score", "trackml_score_ceiling", "trackml_score_graph_hits",
                                         "efficiency", "fake_rate", "duplicate_rate") if k in t]
    for group, key, d in rows:
        interval = d.get("intervals", {}).get(key)
        label = f"{group} {key}"
        if group == "tracks" and key in t.get("matching", {}):
            label += f" ({t['matching'][key].replace('_', '-')})"
        # nan is an undefined metric (e.g. AUC with one class): say so rather than print a number
        value = f"{d[key]:.4f}" if math.isfinite(d[key]) else "undefined"
        table.add_row(label, value, f"[{interval[0]:.4f}, {interval[1]:.4f}]" if interval else "-")
    console.print(table)
    r = t.get("reconstructable", {})
    console.print(f"  reconstructable: pT >= {r.get('pt_min_gev')} GeV, |eta| <= {r.get('eta_max')}, "
                  f">= {r.get('min_hits')} hits; tracks: {t.get('method')} at cut {t.get('cut')}")
    for warning in [metrics["run"].get("warning"), *metrics.get("warnings", ())]:
        if warning:
            console.print(f"  [yellow]warning:[/yellow] {warning}", highlight=False)
    console.print(f"  report: {out_dir} (metrics.json, events.csv, plots/)")
