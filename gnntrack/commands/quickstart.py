"""`gnntrack quickstart [--workdir DIR]`: simulate -> build graphs -> train -> evaluate -> report.

The workdir is an ordinary run directory (see gnntrack.train.loop) plus `report.md`,
`loss.png` and `roc.png`.
"""

from __future__ import annotations

import argparse

HELP = "simulate a small data set, train the segment classifier and write a report (minutes on a CPU)"


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
    from gnntrack.configs.quickstart import quickstart_config
    from gnntrack.io.atomic import check_directory_path
    from gnntrack.report.run import write_report
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
