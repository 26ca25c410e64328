"""`gnntrack quickstart [--workdir DIR]`: simulate -> build graphs -> train -> evaluate -> report.

The workdir is an ordinary run directory (see gnntrack.train.loop) plus `report.md`,
`loss.png` and `roc.png`.
"""

from __future__ import annotations

import argparse

HELP = "simulate a small data set, train the segment classifier and write a report (minutes on a CPU)"


def quickstart_config():
    """The quickstart experiment: barrel, pT > 1 GeV graphs of small simulated events.

    Low pileup (mu = 10) keeps simulation, graph building and each step cheap on a laptop CPU;
    the segment classifier (hidden 64, 6 iterations, `impl="fast"`, with the geometric edge
    features) reaches edge efficiency and purity above 0.97 at threshold 0.5 on held-out events
    in 1500 steps of 4 events each (~47 epochs). Up to 8 bucket shapes are compiled.
    """
    from gnntrack.train.defaults import default_config

    config = default_config()
    config.seed = 0
    data = config.data
    data.source = "simulate"
    data.n_train, data.n_val, data.n_test = 128, 8, 32
    data.seed = 1
    data.simulation.pileup = 10.0
    graph = config.graph
    graph.selection = "barrel"
    graph.pt_min = 1.0
    model = config.model
    model.hidden = 64
    model.n_iters = 6
    model.impl = "fast"
    model.use_edge_features = True
    opt = config.optimizer
    opt.name = "adam"
    opt.lr = 3e-3
    opt.schedule = "warmup_cosine"
    opt.warmup_steps = 50
    config.loss.weighting = "manual"
    config.batching.graphs_per_step = 4
    config.batching.max_buckets = 8
    train = config.train
    train.steps = 1500
    train.log_every = 10
    train.eval_every = 250
    train.checkpoint_every = 500
    config.eval.thresholds = (0.3, 0.5, 0.7, 0.9)
    return config


def _fmt(value, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if value != value else f"{value:.{digits}f}"
    return str(value)


def report_markdown(result: dict, config, *, title: str, plots: dict[str, str]) -> str:
    """report.md text for a finished run (pure: no I/O)."""
    lines = [f"# {title}", ""]
    lines += ["Edge classification on held-out simulated events (threshold 0.5; efficiency = recall, "
              "purity = precision).", ""]
    lines += ["| set | edges | efficiency | purity | accuracy | F1 | AUC |", "|---|---:|---:|---:|---:|---:|---:|"]
    for label, prefix in (("validation", "val_"), ("test (held-out events)", "test_"),
                          ("test, full events", "test_full_")):
        if f"{prefix}recall" in result:
            lines.append(f"| {label} | {result.get('n_' + prefix + 'edges', 0):,} | {_fmt(result[prefix + 'recall'])} | "
                         f"{_fmt(result[prefix + 'precision'])} | {_fmt(result[prefix + 'accuracy'])} | "
                         f"{_fmt(result[prefix + 'f1'])} | {_fmt(result[prefix + 'auc'])} |")
    thresholds = result.get("test_thresholds") or {}
    if thresholds:
        lines += ["", "Test set at other thresholds:", "", "| threshold | efficiency | purity | F1 |",
                  "|---:|---:|---:|---:|"]
        for t, m in thresholds.items():
            lines.append(f"| {t} | {_fmt(m['recall'])} | {_fmt(m['precision'])} | {_fmt(m['f1'])} |")
    data = config.data
    lines += ["", "## Run", "",
              f"- data: {data.source}, {data.n_train} train / {data.n_val} validation / {data.n_test} test events"
              + (f", pileup {data.simulation.pileup:g}, seed {data.seed}" if data.source == "simulate" else ""),
              f"- graphs: selection {config.graph.selection}, pT > {config.graph.pt_min:g} GeV, "
              f"{config.graph.n_phi_sections} x {config.graph.n_eta_sections} sections",
              f"- model: {config.model.name}, "  # a registered model may have neither key
              + "".join(f"{label.format(config.model[key])}, " for key, label in
                        (("hidden", "hidden {}"), ("n_iters", "{} iterations")) if key in config.model)
              + f"{result.get('n_params', 0):,} parameters",
              f"- optimizer: {config.optimizer.name}, lr {config.optimizer.lr:g} ({config.optimizer.schedule}), "
              f"{config.batching.graphs_per_step} graphs per step",
              f"- steps: {result.get('steps')} of {result.get('total_steps')}; best {config.train.best_metric} "
              f"{_fmt(result.get('best_value'))} at step {result.get('best_step')}",
              f"- time: {_fmt(result.get('seconds'), 1)} s in all, {_fmt(result.get('train_seconds'), 1)} s "
              f"training, on {result.get('n_devices')} device(s)",
              f"- padding utilisation {_fmt(result.get('utilisation'), 3)} (real / padded edges) with "
              f"{result.get('n_compiled_shapes')} compiled shape(s)",
              "", "Files: `config.json` (resolved config), `metrics.jsonl`, `tensorboard/`, `checkpoints/`, "
              "`result.json`, `test_scores.npz`.", ""]
    for caption, name in plots.items():
        lines += [f"## {caption}", "", f"![{caption}]({name})", ""]
    return "\n".join(lines)


def write_report(workdir, result: dict, *, title: str = "gnntrack run") -> "Path":
    """Writes loss.png, roc.png and report.md into the run directory; returns report.md's path.

    Plots that cannot be drawn (e.g. no test scores) are left out of the report and named in it.
    """
    from pathlib import Path

    from gnntrack.config import load_config
    from gnntrack.io.atomic import write_text_atomic
    from gnntrack.train.loop import load_scores

    workdir = Path(workdir)
    config = load_config(workdir / "config.json")
    plots: dict[str, str] = {}
    from gnntrack.report.plots import plot_roc, plot_training_curves

    plot_training_curves(workdir / "metrics.jsonl", workdir / "loss.png", title=title + ": training curves")
    plots["Training curves"] = "loss.png"
    scores_path = workdir / "test_scores.npz"
    if scores_path.exists():
        scores = load_scores(scores_path)
        plot_roc(scores["scores"], scores["labels"], workdir / "roc.png",
                 title=f"{title}: test edges ROC (AUC {_fmt(result.get('test_auc'))})")
        plots["ROC on held-out events"] = "roc.png"
    path = workdir / "report.md"
    write_text_atomic(path, report_markdown(result, config, title=title, plots=plots))
    return path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from gnntrack.cli import add_config_arguments

    add_config_arguments(parser, required=False)
    parser.epilog = ("any config key can be overridden: --config.a.b=value, e.g. "
                     "--config.optimizer.lr=1e-3 --config.train.steps=500")
    parser.add_argument("--workdir", default="quickstart", help="run directory (default ./quickstart)")
    parser.add_argument("--restart", dest="resume", action="store_false", default=True,
                        help="ignore checkpoints already in --workdir and start from step 0")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from gnntrack.config import apply_overrides, load_config
    from gnntrack.io.atomic import check_directory_path
    from gnntrack.train.evaluation import print_summary
    from gnntrack.train.loop import train_and_evaluate

    check_directory_path(args.workdir, "--workdir")
    if args.config:
        config = load_config(args.config, args.overrides)
    else:
        config = quickstart_config()
        config.lock()
        apply_overrides(config, args.overrides)
    if args.no_progress:
        with config.unlocked():
            config.train.progress = False
    workdir = Path(args.workdir)
    result = train_and_evaluate(config, workdir, resume=args.resume)
    print_summary(result, title="gnntrack quickstart")
    if result.get("already_complete"):  # its report is already there; nothing was rewritten
        print(f"{workdir}: the quickstart run is already complete (step {result['steps']} of "
              f"{result['total_steps']}); its results are unchanged (--restart to start over)")
        report = workdir / "report.md"
    else:
        report = write_report(workdir, result, title="gnntrack quickstart")
    print(f"report: {report}")
    return 0
