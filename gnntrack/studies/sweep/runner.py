"""Entry points: run (or continue) a sweep from an experiment config or from arguments."""

from __future__ import annotations

import dataclasses
import os
import signal
from pathlib import Path
from typing import Any, Mapping, Sequence

import ml_collections

from gnntrack.config import save_config
from gnntrack.errors import ConfigError
from gnntrack.studies.search_space import ParamSpec, grid_points, parse_search_space
from gnntrack.studies.sweep.results import sweep_result, write_sweep_summary
from gnntrack.studies.sweep.scheduler import worker_loop
from gnntrack.studies.sweep.settings import (SweepError, SweepResult, SweepSettings, TrainFn,
                                             default_sweep_config, split_sweep_config)
from gnntrack.studies.sweep.signals import stop_on_signals, take_stop
from gnntrack.studies.sweep.study import StudyContext
from gnntrack.studies.sweep.workers import spawn_workers, stop_workers


def run_sweep_from_config(config: ml_collections.ConfigDict, workdir: str | os.PathLike, *,
                          train_fn: TrainFn | None = None, workers: int = 1,
                          show_progress: bool = True, write_summary: bool = True) -> SweepResult:
    """Runs (or continues) the sweep described by an experiment config with a `sweep` section."""
    base, specs, settings = split_sweep_config(config)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    save_config(config, workdir)  # the experiment as run, sweep section included
    return _run(base, specs, settings, workdir, train_fn=train_fn, workers=workers,
                show_progress=show_progress, write_summary=write_summary)


def run_sweep(base_config: ml_collections.ConfigDict, search_space: Sequence[Mapping[str, Any] | ParamSpec],
              workdir: str | os.PathLike, *, n_trials: int, sampler: str = "tpe", pruner: str = "median",
              storage: str = "", metric: str = "val_auc", direction: str = "maximize", seed: int = 0,
              train_fn: TrainFn | None = None, workers: int = 1, show_progress: bool = True,
              write_summary: bool = True, **options: Any) -> SweepResult:
    """Runs (or continues) a sweep over `search_space` around `base_config`.

    Args:
      base_config: the run config every trial starts from (no `sweep` section).
      search_space: entries from gnntrack.studies.search_space (dicts) or ParamSpecs.
      workdir: holds study.db (default storage), trials/trial_XXXX run directories and the summary.
      n_trials: budget (COMPLETE + PRUNED trials in the study, counting earlier runs).
      sampler, pruner, storage, metric, direction, seed, **options: as in default_sweep_config().
      train_fn: `train_fn(config, workdir, *, report_fn, resume) -> metrics dict`; defaults to
        gnntrack.train.loop.train_and_evaluate. Must be picklable (module level) when workers > 1.
      workers: local worker processes (this one included).
      write_summary: write summary.json, trials.csv/.md and the plots under workdir at the end.

    Returns:
      SweepResult with the best trial and a table of all trials.
    """
    unknown = set(options) - {f.name for f in dataclasses.fields(SweepSettings)}
    if unknown:
        raise ConfigError(f"unknown sweep option(s): {', '.join(sorted(unknown))}")
    settings = SweepSettings.from_config({**default_sweep_config().to_dict(), **options, "n_trials": n_trials,
                                          "sampler": sampler, "pruner": pruner, "storage": storage,
                                          "metric": metric, "direction": direction, "seed": seed})
    if all(isinstance(s, ParamSpec) for s in search_space):
        specs = list(search_space)
        parse_search_space([s.to_dict() for s in specs], base_config)  # validate against the config
    else:
        specs = parse_search_space(search_space, base_config)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    return _run(base_config, specs, settings, workdir, train_fn=train_fn, workers=workers,
                show_progress=show_progress, write_summary=write_summary)


def _run(base, specs, settings, workdir: Path, *, train_fn, workers: int, show_progress: bool,
         write_summary: bool = True) -> SweepResult:
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers must be a positive integer, got {workers!r}")
    if settings.sampler == "grid":
        grid_points(specs)  # every entry must define its grid values (ConfigError otherwise)
    ctx = StudyContext(base, specs, settings, workdir.resolve(), train_fn)
    study = ctx.open_study()
    with stop_on_signals((signal.SIGINT,)):
        children = []
        try:
            children = spawn_workers(workers - 1, (base, specs, settings, str(ctx.workdir), train_fn),
                                      ctx.workdir)
            worker_loop(ctx, study, show_progress=show_progress)
        except BaseException:  # Ctrl-C (the workers got it too), an error: each worker re-queues its trial
            take_stop()
            stop_workers(children)
            raise
        finally:
            for proc in children:
                proc.wait()
    failed = [str(i + 1) for i, p in enumerate(children) if p.returncode != 0]
    if failed:
        raise SweepError(f"worker process(es) {', '.join(failed)} exited with an error (see "
                         f"{ctx.workdir}/worker_*.log); rerun the same command to continue the study")
    if write_summary:
        write_sweep_summary(study, ctx.workdir, specs, settings)
    return sweep_result(study, specs, settings, ctx.workdir)
