"""Hyperparameter sweeps on Optuna: grid, random and TPE sampling, pruning, resumable, multi-worker.

    result = run_sweep(base_config, space, "runs/sweep", n_trials=12, sampler="tpe", pruner="median")
    result.best_params, result.best_value, result.trials_df

Every trial is an ordinary run directory `<workdir>/trials/trial_XXXX` (resolved config, metrics,
checkpoints written by the training loop) whose config is the base config with the sampled values
applied via `gnntrack.config.set_by_path`. The study lives in a database (SQLite
`<workdir>/study.db` by default; any SQLAlchemy URL such as `postgresql://user:pw@host/db` for
workers on several machines), so that

* rerunning the same command continues the study: finished trials are kept, the budget
  `n_trials` counts COMPLETE + PRUNED trials, and trials left RUNNING by a killed process are
  detected (local dead process id at once, otherwise a heartbeat older than `grace_seconds`),
  marked FAIL and re-queued with the same parameters, seed and run directory (the training loop
  resumes from its last checkpoint);
* several workers (`workers=N` local processes, or the same command started on several machines
  with one storage URL) share the study without running a trial twice: claiming a trial happens
  under a file lock next to a SQLite database (SQLite's own locking does not make Optuna's
  WAITING -> RUNNING update atomic) and under row locks (SELECT ... FOR UPDATE) on PostgreSQL;
* the grid sampler visits every grid point exactly once: all points are queued as WAITING
  trials when the study is created, and workers only pop queued trials;
* stopping is clean: Ctrl-C (the terminal's SIGINT reaches every local worker) or SIGTERM makes
  each worker re-queue its running trial without using up a retry and exit; the worker
  processes started by `workers=N` also stop this way when the process that started them dies,
  even by kill -9 (gnntrack.runtime.stop_with_parent), instead of running on as orphans.

Seeds: `trial_seed="same"` (default) trains every trial with the base `seed` (trials differ only
by their hyperparameters, like common random numbers); `"per_trial"` uses seed + trial number.
The seed is recorded in the trial's config and in its user attributes.

Writers: `write_sweep_summary` writes summary.json, trials.csv, trials.md and PNG plots
(optimisation history, parameter importances, parallel coordinates) under the workdir.

Modules: `settings` (the `sweep` section and its validation), `study` (storage, creating or
loading the study, samplers, pruners, re-queueing), `scheduler` (dead-worker detection, the
budget, claiming trials, the worker loop), `trial` (running one trial), `workers` (local worker
processes), `signals` (clean stops), `runner` (the entry points), `results` and `plots` (the
summary files).
"""

from gnntrack.studies.sweep.results import (markdown_table, param_importances, sweep_result,
                                            trials_dataframe, write_sweep_summary)
from gnntrack.studies.sweep.runner import run_sweep, run_sweep_from_config
from gnntrack.studies.sweep.settings import (SweepError, SweepResult, SweepSettings, default_sweep_config,
                                             quiet_trial_training, split_sweep_config)
from gnntrack.studies.sweep.study import default_storage_url, open_existing_study
from gnntrack.studies.sweep.trial import metric_value, trial_config

__all__ = ["SweepError", "SweepResult", "SweepSettings", "default_storage_url", "default_sweep_config",
           "quiet_trial_training", "markdown_table", "metric_value", "open_existing_study", "param_importances", "run_sweep",
           "run_sweep_from_config", "split_sweep_config", "sweep_result", "trial_config",
           "trials_dataframe", "write_sweep_summary"]
