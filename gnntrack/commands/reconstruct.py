"""`gnntrack reconstruct --run RUN --input EVENTS --out DIR`: the whole-event chain on a directory
of events (gnntrack.tracks.chain): the run's graphs (metric learning + filter, or geometric), its
GNN, tracks on every hit, one TrackML submission and the whole-event numbers."""

from __future__ import annotations

import argparse

HELP = ("run the whole chain of a trained run on a directory of TrackML events (simulated or public): "
        "graphs, GNN, tracks, one submission CSV, TrackML score, efficiency at pT > 1 and 0.5 GeV, fake rate")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", required=True, help="trained run directory (config.json, checkpoints/; the "
                                                      "embedding and filter files its graph config names)")
    parser.add_argument("--input", required=True, help="directory of TrackML events (hits, truth, particles; "
                                                        "csv or csv.gz, the public file layout)")
    parser.add_argument("--out", required=True, help="output directory (submission.csv, whole_event.json, "
                                                      "the evaluation report)")
    parser.add_argument("--checkpoint", default="best", help="'best' (default), 'latest' or a step number")
    parser.add_argument("--limit", type=int, default=0, help="only the first N events (0 = all)")
    parser.add_argument("--threshold", type=float, default=None,
                        help="edge-score cut of the track building (default: 0.5, or tuned with --tune-on)")
    parser.add_argument("--tune-on", default=None, metavar="EVENTS",
                        help="choose the edge cut on these other events (with truth): the scanned cut with "
                             "the highest TrackML score there (report in OUT/tuning)")
    parser.add_argument("--method", choices=("walkthrough", "cc"), default="walkthrough",
                        help="track building (default: %(default)s)")
    parser.add_argument("--graph", action="append", default=[], metavar="KEY=VALUE",
                        help="change the run's graph config (repeatable), as for gnntrack evaluate, e.g. "
                             "--graph metric.eps=2 for a faster approximate neighbour search")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--json", action="store_true", help="print whole_event.json instead of text")


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from gnntrack.errors import InputError
    from gnntrack.io.atomic import check_directory_path
    from gnntrack.tracks.chain import default_chain_config, format_summary, reconstruct

    if not Path(args.input).is_dir():
        raise InputError(f"--input: directory not found: {args.input}")
    if args.threshold is not None and args.tune_on is not None:
        raise InputError("--threshold and --tune-on both choose the edge cut: give one")
    threshold = 0.5 if args.threshold is None else float(args.threshold)
    if not 0.0 <= threshold <= 1.0:
        raise InputError(f"--threshold must lie in [0, 1], got {threshold}")
    checkpoint = str(args.checkpoint)
    if checkpoint not in ("best", "latest") and not checkpoint.isdigit():
        raise InputError(f"--checkpoint must be 'best', 'latest' or a step number, got {args.checkpoint!r}")
    check_directory_path(args.out, "--out")
    config = default_chain_config()
    config.update(checkpoint=checkpoint, limit=max(int(args.limit), 0), threshold=threshold,
                  method=args.method, plots=not args.no_plots, progress=not args.no_progress,
                  graph_overrides=tuple(args.graph))
    summary = reconstruct(args.run, args.input, args.out, config=config, tune_dir=args.tune_on)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(format_summary(summary))
        print(f"  wrote {Path(args.out) / 'submission.csv'}, whole_event.json and the report to {args.out}")
    return 0
