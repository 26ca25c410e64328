"""`gnntrack evaluate --workdir RUN --input EVENTS_DIR [--out DIR]`: tracks, TrackML score, report.

A run of the 'pflow' task is evaluated on particle-flow events instead (`run_pflow`): jets, MET
and per-class rates of the model and the rule-based baseline (`gnntrack.pflow.evaluate`). A run of
the 'jet' task is evaluated on jets (`run_jets`, `gnntrack.jets.evaluate`): its test split
(`--input test`) or a jet file in any public layout, against the jet-mass baseline, with its
parameters, FLOPs and latency per jet.
"""

from __future__ import annotations

import argparse
import math

HELP = ("evaluate a trained run on TrackML events (edge metrics, tracks, TrackML score, efficiency, plots), "
        "a particle-flow run on pflow events (jets, MET, per-class rates vs the baseline) or a jet tagger "
        "on jets (AUC, rejection, ROC, FLOPs and latency vs the mass baseline)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workdir", required=True, help="run directory (config.json, checkpoints/)")
    parser.add_argument("--input", required=True,
                        help="directory of TrackML events (hits, truth, particles; cells optional; csv or csv.gz); "
                             "for a pflow run, of particle-flow events (gnntrack pflow simulate; the run's own "
                             "directory: its test events only); for a jet-tagging run, a jet file (top-tagging test.h5, ATLAS, "
                             "JetNet or generated) or 'test' for the run's own test split")
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
    parser.add_argument("--model", action="append", default=[], metavar="KEY=VALUE",
                        help="particle flow: evaluate the run's parameters with its model config changed "
                             "(repeatable), e.g. --model dense=true for an LSH-trained MLPF with one bin "
                             "(the quadratic reference)")
    parser.add_argument("--compare", default="", metavar="RUN",
                        help="particle flow: another pflow run evaluated on the same events (its best "
                             "checkpoint), a third column with the paired difference ML - it")
    parser.add_argument("--compare-model", action="append", default=[], metavar="KEY=VALUE",
                        help="particle flow: model changes for the --compare run, as --model")
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

    task = run_task(args.workdir)
    if task == "pflow":
        return run_pflow(args)
    pflow_only = [name for name, given in (("--model", args.model), ("--compare", args.compare),
                                           ("--compare-model", args.compare_model)) if given]
    if pflow_only:
        raise InputError(f"{', '.join(pflow_only)}: particle-flow runs only; {args.workdir} is a run of the "
                         f"{task or 'edge'!r} task")
    if task == "jet":
        return run_jets(args)
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


def run_task(workdir: str) -> str | None:
    """task.name of the run in `workdir` ('edge' when its config names none; None when there is
    no readable config.json: the tracking path then says what is wrong)."""
    import json
    from pathlib import Path

    try:
        config = json.loads((Path(workdir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return (config.get("task") or {}).get("name", "edge")


def common_settings(args: argparse.Namespace, config):
    """`config` with the options every task's evaluation shares (--checkpoint, --limit, --n-boot,
    --no-plots), after checking --checkpoint and --out (InputError naming the option)."""
    from gnntrack.errors import InputError
    from gnntrack.io.atomic import check_directory_path

    checkpoint = str(args.checkpoint)
    if checkpoint not in ("best", "latest") and not checkpoint.isdigit():
        raise InputError(f"--checkpoint must be 'best', 'latest' or a step number, got {args.checkpoint!r}")
    if args.out is not None:
        check_directory_path(args.out, "--out")
    config.checkpoint = checkpoint
    config.limit = max(int(args.limit), 0)
    config.n_boot = max(int(args.n_boot), 1)
    config.plots = not args.no_plots
    return config


def run_pflow(args: argparse.Namespace) -> int:
    """`gnntrack evaluate` of a particle-flow run: --checkpoint, --limit, --n-boot, --no-plots,
    --json, --out, --model, --compare and --compare-model apply; the tracking options do not."""
    import json
    from pathlib import Path

    from gnntrack.errors import InputError
    from gnntrack.pflow.evaluate import default_pflow_evaluation_config, evaluate_pflow_run
    from gnntrack.pflow.store import read_meta

    read_meta(args.input)  # names the directory when it holds no particle-flow events
    config = common_settings(args, default_pflow_evaluation_config())
    config.model_overrides, config.compare = tuple(args.model), str(args.compare)
    config.compare_model_overrides = tuple(args.compare_model)
    if config.compare_model_overrides and not config.compare:
        raise InputError("--compare-model changes the --compare run's model: give --compare RUN too")
    metrics = evaluate_pflow_run(args.workdir, args.input, args.out, config=config)
    if args.json:
        print(json.dumps({k: metrics[k] for k in ("algorithms", "differences", "difference", "settings", "n_events")},
                         indent=2))
    else:
        print_pflow_metrics(metrics, args.out or str(Path(args.workdir) / "evaluation"))
    return 0


def print_pflow_metrics(metrics: dict, out_dir: str, console=None) -> None:
    """Jet, MET and per-class numbers of the model and the baseline, with intervals."""
    from rich.console import Console
    from rich.table import Table

    from gnntrack.report.pflow import format_interval

    console = console or Console()
    algorithms = metrics["algorithms"]
    diffs = metrics.get("differences", ())
    table = Table(title=f"gnntrack evaluate (particle flow): {metrics['n_events']} events, checkpoint "
                        f"{metrics['run']['checkpoint']} (step {metrics['run']['step']})")
    for column in ("metric", *algorithms, *(d["of"] for d in diffs)):
        table.add_column(column, justify="left" if column == "metric" else "right")
    rows = [(f"jet {k.replace('_', ' ')}", "jets", k) for k in ("response", "resolution", "matching_efficiency")]
    rows += [(f"MET {k.replace('_', ' ')}", "met", k) for k in ("response", "resolution", "sigma_gev")]
    for label, group, key in rows:
        name = f"{'jet' if group == 'jets' else 'met'}_{key}"  # only some have a difference
        table.add_row(label, *(format_interval(a[group][key]) for a in algorithms.values()),
                      *(format_interval(d[name]) if name in d else "-" for d in diffs))
    for name in next(iter(algorithms.values()))["classes"]:
        for key in ("efficiency", "fake_rate"):
            table.add_row(f"{name} {key.replace('_', ' ')}", *(format_interval(a["classes"][name][key]) for a in algorithms.values()),
                          *("-" for _ in diffs))
    console.print(table)
    s = metrics["settings"]
    console.print(f"  jets: anti-kT R = {s['jet_radius']}, target pT > {s['jet_pt_min']} GeV, |eta| < "
                  f"{s['jet_eta_max']}, matched within dR < {s['match_dr']}; events: {metrics['input']['selection']}")
    console.print(f"  report: {out_dir} (metrics.json, report.md, plots/)")


def run_jets(args: argparse.Namespace) -> int:
    """`gnntrack evaluate` of a jet-tagging run: --checkpoint, --limit, --n-boot, --no-plots,
    --json and --out apply."""
    import json
    from pathlib import Path

    from gnntrack.jets.evaluate import default_jets_evaluation_config, evaluate_jets_run

    config = common_settings(args, default_jets_evaluation_config())
    metrics = evaluate_jets_run(args.workdir, args.input, args.out, config=config)
    out_dir = args.out or str(Path(args.workdir) / "evaluation")
    if args.json:
        print(json.dumps({k: metrics[k] for k in ("scorers", "difference", "costs", "input")}, indent=2))
    else:
        from gnntrack.report.jets import jets_markdown

        print(jets_markdown(metrics, {}), end="")  # the markdown table reads as it is on a terminal
        print(f"  report: {out_dir} (metrics.json, report.md, roc.npz, plots/)")
    return 0
