"""Running one claimed trial: its config, run directory, heartbeat, pruning reports, and the
outcome told to the study (or the trial handed back when the process is stopped)."""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from pathlib import Path
from typing import Any, Mapping

import ml_collections
import numpy as np

from gnntrack.config import set_by_path
from gnntrack.errors import ConfigError, InputError
from gnntrack.io.atomic import write_json_atomic
from gnntrack.studies.search_space import apply_params
from gnntrack.studies.sweep.signals import take_stop
from gnntrack.studies.sweep.study import StudyContext, make_sampler, requeue, trial_sampler_seed

log = logging.getLogger(__name__)

TRIALS_DIR = "trials"


class Heartbeat:
    """Records the trial's heartbeat every `interval` seconds in a daemon thread.

    Optuna beats only inside `Study.optimize` (its heartbeat thread is private); the sweep's
    workers use ask/tell (see `claim_trial`), so they beat themselves through the storage's public
    `record_heartbeat`.
    """

    def __init__(self, storage, trial_id: int, interval: float):
        self.storage, self.trial_id, self.interval = storage, trial_id, interval
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._beat, daemon=True)

    def _beat(self):
        while not self.stop.wait(self.interval):
            try:
                self.storage.record_heartbeat(self.trial_id)
            except Exception as exc:  # a missed beat must not kill the training
                log.debug("heartbeat failed: %r", exc)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def trial_config(base: ml_collections.ConfigDict, params: Mapping[str, Any], seed: int | None,
                 shared_cache_dir: str | os.PathLike | None = None) -> ml_collections.ConfigDict:
    """The run config of one trial: base + sampled params (+ seed when the config has one).

    With `shared_cache_dir`, an empty `data.cache_dir` points there, so that trials share the
    simulated events and built graphs instead of rebuilding them in every run directory.
    """
    config = apply_params(base, params)
    if seed is not None and "seed" in config:
        set_by_path(config, "seed", int(seed))
    data = config.get("data")
    if shared_cache_dir is not None and isinstance(data, ml_collections.ConfigDict) \
            and "cache_dir" in data and not data.cache_dir:
        set_by_path(config, "data.cache_dir", str(shared_cache_dir))
    return config


def run_trial(ctx: StudyContext, study, trial) -> str:
    """Trains one claimed trial and tells the study its outcome; returns the final state name.

    Stopped at any point (Ctrl-C, SIGTERM: KeyboardInterrupt; SystemExit), the trial is handed
    back: FAIL, and re-queued with the same parameters, seed and run directory (the training
    resumes from its checkpoint) without using up one of its retries.
    """
    start = time.monotonic()
    try:
        return _train_trial(ctx, study, trial, start)
    except (KeyboardInterrupt, SystemExit):
        take_stop()
        _hand_back(ctx, study, trial, time.monotonic() - start)
        raise


def _hand_back(ctx: StudyContext, study, trial, duration_s: float) -> None:
    """FAIL + re-queue (not counted as a retry) for a trial that is still RUNNING."""
    from optuna.trial import TrialState

    trial_id = ctx.trial_id(trial.number)
    if ctx.storage.get_trial(trial_id).state != TrialState.RUNNING:
        return  # stopped after its outcome was told
    trial.set_user_attr("duration_s", round(duration_s, 3))
    study.tell(trial, state=TrialState.FAIL)
    requeue(study, ctx.storage.get_trial(trial_id), ctx.settings, count=False)


def _train_trial(ctx: StudyContext, study, trial, start: float) -> str:
    from optuna.trial import TrialState

    s = ctx.settings
    # Each trial samples with its own seed: deterministic when replayed, distinct across workers.
    study.sampler = make_sampler(s, trial_sampler_seed(s.seed, trial.number))
    params = {spec.key: spec.suggest(trial) for spec in ctx.specs}
    attrs = trial.user_attrs
    run_dir_rel = attrs.get("run_dir") or f"{TRIALS_DIR}/trial_{trial.number:04d}"
    seed = attrs.get("seed")
    if seed is None:
        base_seed = ctx.base.get("seed") if "seed" in ctx.base else None
        if base_seed is not None:
            seed = int(base_seed) + (trial.number if s.trial_seed == "per_trial" else 0)
    trial.set_user_attr("run_dir", run_dir_rel)
    trial.set_user_attr("seed", seed)
    config = trial_config(ctx.base, params, seed, shared_cache_dir=ctx.workdir / "data")
    run_dir = ctx.workdir / run_dir_rel
    run_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(run_dir / "trial.json", {
        "study": s.study_name, "storage": ctx.url, "trial": trial.number, "params": params, "seed": seed,
        "retry_of": attrs.get("retry_of"), "worker": ctx.worker_token})

    progress = {"pruned": False, "step": None, "value": None}

    def report_fn(step: int, val_metrics: Mapping[str, Any]) -> bool:
        if s.metric not in val_metrics:
            return False  # nothing to prune on (the final result is checked for the metric)
        value = metric_value(val_metrics, s.metric)
        trial.report(value, int(step))
        progress.update(step=int(step), value=value)
        if trial.should_prune():
            progress["pruned"] = True
            return True
        return False

    train_fn = ctx.train_fn
    if train_fn is None:
        from gnntrack.train.loop import train_and_evaluate as train_fn  # jax: only when a trial runs
    with Heartbeat(ctx.storage, ctx.trial_id(trial.number), s.heartbeat_seconds):
        try:
            result = train_fn(config, str(run_dir), report_fn=report_fn, resume=True)
        except Exception as exc:
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}"[:1000])
            trial.set_user_attr("duration_s", time.monotonic() - start)
            study.tell(trial, state=TrialState.FAIL)
            if isinstance(exc, (ConfigError, InputError)):
                raise  # a config/input error would fail every trial: stop with its message
            # e.g. a diverging learning rate (non-finite loss): a failed trial, the sweep goes on
            log.warning("trial %d failed: %s: %s", trial.number, type(exc).__name__, exc)
            return "FAIL"
    trial.set_user_attr("duration_s", round(time.monotonic() - start, 3))
    final = _jsonable_metrics(result)
    trial.set_user_attr("final_metrics", final)
    if progress["pruned"]:
        study.tell(trial, state=TrialState.PRUNED)
        state = "PRUNED"
    else:
        try:
            value = metric_value(result, s.metric)
        except ConfigError as exc:
            # A re-queued trial whose run had finished before the kill resumes with nothing left
            # to do: its result.json (written by the training loops) still holds the metric.
            saved = _saved_result(run_dir) if "retry_of" in attrs else {}
            if s.metric in saved:
                progress["value"] = metric_value(saved, s.metric)
            if progress["value"] is None:
                trial.set_user_attr("error", str(exc))
                study.tell(trial, state=TrialState.FAIL)
                if "retry_of" in attrs:
                    return "FAIL"  # e.g. its run had finished before the kill: nothing new to report
                raise  # a metric name the training never returns: stop with the available names
            value = progress["value"]  # the last validation the run reported
        if not math.isfinite(value):
            trial.set_user_attr("error", f"non-finite {s.metric}={value}")
            study.tell(trial, state=TrialState.FAIL)
            return "FAIL"
        study.tell(trial, value)
        state = "COMPLETE"
    log.info("trial %d %s %s=%s params=%s", trial.number, state, s.metric,
             progress["value"] if state == "PRUNED" else final.get(s.metric), params)
    return state


def _saved_result(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / "result.json").read_text())
    except (OSError, ValueError):
        return {}


def metric_value(metrics: Mapping[str, Any], name: str) -> float:
    """`metrics[name]` as a float; ConfigError listing the available names when missing."""
    if not isinstance(metrics, Mapping) or name not in metrics:
        known = sorted(k for k in (metrics or {}) if isinstance(k, str))
        raise ConfigError(f"config key 'sweep.metric': the training run reports no {name!r}; "
                          f"available: {', '.join(known) or 'none'}")
    try:
        return float(metrics[name])
    except (TypeError, ValueError):
        raise ConfigError(f"config key 'sweep.metric': {name!r} is not a number ({metrics[name]!r})") from None


def _jsonable_metrics(metrics: Mapping[str, Any] | None) -> dict:
    out = {}
    for key, value in dict(metrics or {}).items():
        if isinstance(value, (bool, np.bool_)):
            out[key] = bool(value)
        elif isinstance(value, (int, float, np.integer, np.floating)) or (
                isinstance(value, np.ndarray) and value.size == 1):
            v = float(np.asarray(value).reshape(()))
            out[key] = v if math.isfinite(v) else None
        elif isinstance(value, str):
            out[key] = value
    return out
