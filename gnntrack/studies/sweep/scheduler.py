"""Scheduling: detecting trials of dead workers, counting the budget, claiming the next trial
and the loop each worker runs."""

from __future__ import annotations

import dataclasses
import datetime
import logging
import os
import socket
import time
import warnings
from typing import Any, Mapping

from gnntrack.runtime import pid_alive
from gnntrack.studies.sweep.settings import SweepError, SweepSettings
from gnntrack.studies.sweep.study import META_ATTR, StudyContext, requeue
from gnntrack.studies.sweep.trial import run_trial

log = logging.getLogger(__name__)


def fail_stale_trials(ctx: StudyContext, study) -> list[int]:
    """Fails (and re-queues) RUNNING trials whose worker is gone; returns their numbers.

    Stale = heartbeat older than grace_seconds (optuna's check, any machine), or the recorded
    worker process is on this host and no longer exists, or no worker was ever recorded and the
    trial started more than grace_seconds ago (killed between claiming and starting). The process
    id check is ours: it finds a killed local worker's trial at once, where the heartbeat alone
    would leave it RUNNING (and the budget taken) for the grace period.
    """
    import optuna
    from optuna.trial import TrialState

    host = socket.gethostname()
    now = datetime.datetime.now()
    dead = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = trial.user_attrs.get("worker")
        if worker is None:
            started = trial.datetime_start or now
            if (now - started).total_seconds() > ctx.settings.grace_seconds:
                dead.append(trial)
            continue
        w_host, _, w_pid = worker.rpartition(":")
        if w_host == host and w_pid.isdigit() and int(w_pid) != os.getpid() and not pid_alive(int(w_pid)):
            dead.append(trial)
    numbers = []
    for trial in dead:
        try:
            trial_id = ctx.trial_id(trial.number)
            # The storage's compare-and-set: False or an error when another worker failed it first.
            ok = ctx.storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            ok = False  # another worker got there first
        if ok:
            numbers.append(trial.number)
            requeue(study, ctx.storage.get_trial(trial_id), ctx.settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
        optuna.storages.fail_stale_trials(study)  # heartbeat-stale ones; re-queued by the callback
        after = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
    return numbers + sorted(after - before)


@dataclasses.dataclass
class _Counts:
    done: int       # COMPLETE + PRUNED
    running: int
    waiting: int
    failed: int     # FAIL by an exception in the training function (not re-queued kills)


def count_trials(study) -> _Counts:
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    states = [t.state for t in trials]
    failed = sum(1 for t in trials if t.state == TrialState.FAIL and "error" in t.user_attrs)
    return _Counts(done=sum(s in (TrialState.COMPLETE, TrialState.PRUNED) for s in states),
                   running=states.count(TrialState.RUNNING), waiting=states.count(TrialState.WAITING),
                   failed=failed)


def claim_trial(ctx: StudyContext, study):
    """Returns a claimed trial, "wait" (others are running the rest) or None (study finished).

    Workers claim with ask/tell under `claim_lock` rather than run `Study.optimize`: the budget
    is checked before a trial starts (optuna.study.MaxTrialsCallback stops `optimize` after a
    trial ends, so N workers would start up to N - 1 trials too many), and a grid trial is
    popped from the queue only (optimize would sample new ones once the queue is empty).
    """
    from optuna.trial import TrialState

    s = ctx.settings
    with ctx.claim_lock():
        fail_stale_trials(ctx, study)
        counts = count_trials(study)
        if s.sampler == "grid":
            if counts.waiting == 0:
                return "wait" if counts.running else None
        else:
            if counts.done >= s.n_trials:
                return None
            if counts.failed >= (s.max_failures or s.n_trials):
                raise SweepError(f"{counts.failed} trials failed with an error (see the 'error' column of "
                                 f"{ctx.workdir / 'trials.csv'} or the trials' logs); stopping the sweep")
            if counts.waiting == 0 and counts.done + counts.running >= s.n_trials:
                return "wait"
        with warnings.catch_warnings():
            # optuna warns that heartbeats are meant for Study.optimize: we beat ourselves (Heartbeat)
            warnings.filterwarnings("ignore", message=".*Heartbeat.*")
            trial = study.ask()
        trial.set_user_attr("worker", ctx.worker_token)
        trial_id = ctx.trial_id(trial.number)
        ctx.storage.record_heartbeat(trial_id)
        if _is_surplus(trial, study, s, ctx.storage.get_trial_system_attrs(trial_id)):
            # Only without a file lock (several machines): another worker claimed the last slot.
            trial.set_user_attr("surplus", True)
            study.tell(trial, state=TrialState.FAIL)
            return "wait"
        return trial


def _is_surplus(trial, study, settings: SweepSettings, system_attrs: Mapping[str, Any]) -> bool:
    from optuna.trial import TrialState

    fixed = system_attrs.get("fixed_params")
    if settings.sampler == "grid":
        return fixed is None  # a grid trial must come from the queue
    if fixed is not None:
        return False
    live = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
    earlier = sum(1 for t in study.get_trials(deepcopy=False)
                  if t.number < trial.number and t.state in live)
    return earlier >= settings.n_trials


def worker_loop(ctx: StudyContext, study, *, show_progress: bool = True) -> None:
    """Claims and runs trials until the study's budget is met."""
    from tqdm.auto import tqdm

    target = ctx.settings.n_trials
    if ctx.settings.sampler == "grid":
        target = study.user_attrs.get(META_ATTR, {}).get("n_grid", target)
    bar = tqdm(total=target, desc="sweep trials", unit="trial", disable=not show_progress or None)
    try:
        while True:
            bar.n = min(count_trials(study).done, target)
            bar.refresh()
            claimed = claim_trial(ctx, study)
            if claimed is None:
                break
            if claimed == "wait":
                time.sleep(ctx.settings.poll_seconds)
                continue
            run_trial(ctx, study, claimed)
        bar.n = min(count_trials(study).done, target)
        bar.refresh()
    finally:
        bar.close()
