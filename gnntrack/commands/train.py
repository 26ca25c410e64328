"""`gnntrack train --config experiments/X.py --workdir RUN [--resume] [--config.a.b=v ...]`."""

from __future__ import annotations

import argparse

HELP = "train an edge classifier from an experiment config into a run directory (resumable)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from gnntrack.cli import add_config_arguments

    add_config_arguments(parser)
    parser.epilog = ("any config key can be overridden: --config.a.b=value, e.g. "
                     "--config.optimizer.lr=1e-3 --config.train.steps=500")
    parser.add_argument("--workdir", required=True, help="run directory (config, metrics, checkpoints)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--resume", dest="resume", action="store_true", default=True,
                       help="continue from the last checkpoint in --workdir if there is one (default)")
    group.add_argument("--restart", dest="resume", action="store_false",
                       help="ignore existing checkpoints in --workdir and start from step 0")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    from gnntrack.train.distributed import add_launch_arguments

    add_launch_arguments(parser)


def run(args: argparse.Namespace) -> int:
    import os

    from gnntrack.io.atomic import check_directory_path
    from gnntrack.io.lock import check_not_busy, hold_directory
    from gnntrack.train.distributed import ENV_AUTO, distributed_env, launch_from_args

    check_directory_path(args.workdir, "--workdir")
    if distributed_env() is None and os.environ.get(ENV_AUTO, "").lower() != "auto":
        # the user's own process (not one a launcher or a cluster started): a busy workdir stops it
        # here, before --num-processes N starts anything
        check_not_busy(args.workdir)
    # --num-processes N: this process only launches N workers (which come back here with the
    # GNNTRACK_* variables set and initialise jax.distributed) and returns their exit code.
    code = launch_from_args(args, verb="train")
    if code is not None:
        return code

    import jax

    from gnntrack.report.run import write_report
    from gnntrack.config import load_config
    from gnntrack.train.evaluation import print_summary
    from gnntrack.train.loop import resolve_config, train_and_evaluate

    config = load_config(args.config, args.overrides)
    if args.no_progress:
        with config.unlocked():
            config.train.progress = False
    config = resolve_config(config)  # a bad config is refused before the workdir is created
    if jax.process_index() != 0:  # the other processes' copies live in WORKDIR/process_<i>
        train_and_evaluate(config, args.workdir, resume=args.resume)
        return 0
    with hold_directory(args.workdir):  # held through the report (the loop takes it again inside)
        result = train_and_evaluate(config, args.workdir, resume=args.resume)
        if result.get("already_complete"):
            print(f"{args.workdir}: the run is already complete (step {result['steps']} of "
                  f"{result['total_steps']}); its results are unchanged in {args.workdir}/result.json "
                  "(raise --config.train.steps to train on, or --restart to start over)")
            return 0
        report = write_report(args.workdir, result, title=f"gnntrack train: {args.workdir}")
    print_summary(result, title=f"gnntrack train: {args.workdir}")
    print(f"report: {report}")
    return 0
