"""`gnntrack sweep --config experiments/sweeps/X.py --workdir W [--n-trials N] [--sampler grid|random|tpe]
[--pruner none|median|asha] [--storage URL] [--workers N] [--config.a.b=v ...]`.

Runs (or continues: rerun the same command after a crash or Ctrl-C) an Optuna study whose
trials are ordinary run directories W/trials/trial_XXXX, then writes W/summary.json,
W/trials.csv, W/trials.md and W/{history,importances,parallel_coordinates}.png.

Several workers: `--workers N` starts N local processes; to spread a study over machines, start
the same command on each with one shared database, e.g.
`--storage postgresql://user:password@host:5432/sweeps --study-name lr_scan` (needs a PostgreSQL
driver such as psycopg2 installed next to gnntrack; the default SQLite file W/study.db is for one
machine). Flags override the experiment's `sweep` section (`--config.sweep.KEY=V` works too).
"""

from __future__ import annotations

import argparse

HELP = "hyperparameter sweep (grid / random / TPE, pruning, resumable, multi-worker) on Optuna"


EPILOG = """examples:
  gnntrack sweep --config experiments/sweeps/toy_default.py --workdir runs/sweep_toy
  gnntrack sweep ... --workdir runs/sweep_toy            # after a crash / Ctrl-C: continues the study
  gnntrack sweep ... --workdir runs/sweep_toy --n-trials 24  # extends it to 24 trials
  gnntrack sweep ... --workers 2                         # two local worker processes
  gnntrack sweep ... --storage postgresql://user:pw@db-host:5432/sweeps --study-name lr_scan
      (run the same line on every machine; needs a PostgreSQL driver, e.g. psycopg2)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from gnntrack.cli import add_config_arguments

    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    add_config_arguments(parser)
    parser.add_argument("--workdir", required=True,
                        help="sweep directory: study.db, trials/trial_XXXX run directories, summary")
    parser.add_argument("--n-trials", type=int, default=None,
                        help="budget: COMPLETE + PRUNED trials the study should hold (sweep.n_trials)")
    parser.add_argument("--sampler", choices=("grid", "random", "tpe"), default=None, help="sweep.sampler")
    parser.add_argument("--pruner", choices=("none", "median", "asha"), default=None, help="sweep.pruner")
    parser.add_argument("--storage", default=None,
                        help="SQLAlchemy URL of the study database (default sqlite:///WORKDIR/study.db; "
                             "postgresql://... to share a study between machines)")
    parser.add_argument("--study-name", default=None, help="study name inside the storage (sweep.study_name)")
    parser.add_argument("--workers", type=int, default=1, help="local worker processes (default 1)")
    parser.add_argument("--summary-only", action="store_true",
                        help="do not train: rewrite the summary, table and plots of the existing study")
    parser.add_argument("--quiet", action="store_true", help="no progress bar or per-trial log lines")


def run(args: argparse.Namespace) -> int:
    import logging
    from pathlib import Path

    from gnntrack.config import load_config, set_by_path
    from gnntrack.errors import ConfigError
    from gnntrack.io.atomic import check_directory_path
    from gnntrack.studies import sweep

    check_directory_path(args.workdir, "--workdir")
    config = load_config(args.config, args.overrides)
    if "sweep" not in config:
        raise ConfigError(f"{args.config} has no 'sweep' section (see experiments/sweeps/toy_default.py)")
    for flag, key in (("n_trials", "n_trials"), ("sampler", "sampler"), ("pruner", "pruner"),
                      ("storage", "storage"), ("study_name", "study_name")):
        value = getattr(args, flag)
        if value is not None:
            set_by_path(config, f"sweep.{key}", value)
    if args.workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {args.workers}")
    if not args.quiet:
        # only the sweep's own per-trial lines: the root logger stays quiet (orbax/absl chatter)
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
        logger = logging.getLogger("gnntrack.studies.sweep")
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False

    if args.summary_only:
        study, specs, settings = sweep.open_existing_study(config, args.workdir)
        sweep.write_sweep_summary(study, Path(args.workdir).resolve(), specs, settings)
        result = sweep.sweep_result(study, specs, settings, Path(args.workdir).resolve())
    else:
        result = sweep.run_sweep_from_config(config, args.workdir, workers=args.workers,
                                             show_progress=not args.quiet)
    _print_result(result, config.sweep.metric)
    return 0


def _print_result(result, metric: str) -> None:
    from pathlib import Path

    df = result.trials_df
    counts = ", ".join(f"{n} {state.lower()}" for state, n in df["state"].value_counts().items())
    print(f"study {result.study_name!r} in {result.storage}: {len(df)} trials ({counts})")
    if result.best_trial is None:
        print("no trial has completed yet")
    else:
        params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in result.best_params.items())
        print(f"best: trial {result.best_trial}, {metric} = {result.best_value:.4f} ({params})")
        print(f"      run directory {result.best_run_dir}")
    workdir = Path(result.workdir)
    print(f"summary: {workdir / 'trials.md'}, {workdir / 'trials.csv'}, {workdir / 'summary.json'}, "
          f"plots {workdir}/{{history,importances,parallel_coordinates}}.png")
