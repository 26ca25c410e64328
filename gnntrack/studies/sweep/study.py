"""The study in its storage: the database, opening or creating the study (queueing the grid and
the baseline trial), samplers, pruners and re-queueing a trial whose process died."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sqlite3
import time
import warnings
from pathlib import Path
from typing import Any, Iterator, Sequence

import ml_collections
import numpy as np

from gnntrack.studies.search_space import ParamSpec, grid_points
from gnntrack.studies.sweep.settings import SweepError, SweepSettings, split_sweep_config

log = logging.getLogger(__name__)

STUDY_DB = "study.db"
META_ATTR = "gnntrack_sweep"  # study user attribute: the sweep's identity (space, sampler, metric)


def default_storage_url(workdir: str | os.PathLike) -> str:
    """sqlite:///<absolute workdir>/study.db"""
    return f"sqlite:///{Path(workdir).resolve() / STUDY_DB}"


def sqlite_path(url: str) -> Path | None:
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        return Path(url[len("sqlite:///"):])
    return None


def _connect_sqlite(path: Path):
    """A SQLite connection that waits for locks (several workers) and commits cheaply.

    WAL journal + synchronous=NORMAL: a commit no longer waits for an fsync (dozens per trial),
    and a killed process cannot corrupt the database (an OS crash may lose the last commits).
    WAL needs a local file system, as SQLite with several processes does anyway.
    """
    connection = sqlite3.connect(str(path), timeout=300, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    return connection


class StudyContext:
    """Everything a worker needs; cheap to rebuild in a spawned process."""

    def __init__(self, base, specs, settings: SweepSettings, workdir: Path, train_fn):
        self.base, self.specs, self.settings, self.workdir = base, list(specs), settings, Path(workdir)
        self.train_fn = train_fn
        self.url = settings.storage or default_storage_url(self.workdir)
        self.lock_file = None
        db = sqlite_path(self.url)
        if db is not None:
            db.parent.mkdir(parents=True, exist_ok=True)
            self.lock_file = db.with_name(db.name + ".lock")
        self.worker_token = f"{socket.gethostname()}:{os.getpid()}"
        self.storage = None
        self.study_id: int | None = None

    def trial_id(self, number: int) -> int:
        """The storage's id of trial `number` (Optuna keeps it in the private `Trial._trial_id`)."""
        return self.storage.get_trial_id_from_study_id_trial_number(self.study_id, number)

    @contextlib.contextmanager
    def claim_lock(self) -> Iterator[None]:
        """Serialises study initialisation and trial claims of processes sharing a SQLite file."""
        if self.lock_file is None:
            yield
            return
        import fcntl

        with open(self.lock_file, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def make_storage(self):
        import optuna

        s = self.settings
        db = sqlite_path(self.url)
        if db is not None:
            engine_kwargs = {"creator": lambda: _connect_sqlite(db)}
        else:
            engine_kwargs = {"pool_pre_ping": True}
        # Optuna's heartbeat-stale check (fail_stale_trials) with our re-queue as its callback.
        # Not optuna.storages.RetryHeartbeatStaleTrialCallback: it counts every re-queue as a retry
        # (a Ctrl-C hand-back must not use one up) and copies every user attribute of the dead
        # trial (its worker, error and duration) into the new one.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                self.url, engine_kwargs=engine_kwargs, heartbeat_interval=s.heartbeat_seconds,
                grace_period=s.grace_seconds,
                heartbeat_stale_trial_callback=lambda study, trial: requeue(study, trial, self.settings))

    def _make_storage_retrying(self, attempts: int = 5):
        # Workers on several machines may create the schema of a new database at the same time;
        # the loser sees "table already exists" once and then finds the schema in place.
        for attempt in range(attempts):
            try:
                return self.make_storage()
            except Exception as exc:  # sqlalchemy OperationalError / IntegrityError
                if attempt == attempts - 1 or "exist" not in str(exc).lower():
                    raise
                time.sleep(0.5 * (attempt + 1))

    def meta(self) -> dict:
        return {"version": 1, "space": [spec.to_dict() for spec in self.specs],
                "sampler": self.settings.sampler, "metric": self.settings.metric,
                "direction": self.settings.direction}

    def open_study(self):
        """Creates the study (queueing the grid) or loads it, checking it is the same sweep."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        s = self.settings
        with self.claim_lock():  # also serialises the creation of the database schema
            self.storage = self._make_storage_retrying()
            try:
                study = optuna.create_study(storage=self.storage, study_name=s.study_name,
                                            direction=s.direction, sampler=make_sampler(s, 0),
                                            pruner=make_pruner(s))
                log.info("created study %r in %s", s.study_name, self.url)
            except optuna.exceptions.DuplicatedStudyError:
                study = optuna.load_study(study_name=s.study_name, storage=self.storage,
                                          sampler=make_sampler(s, 0), pruner=make_pruner(s))
            self.study_id = self.storage.get_study_id_from_name(s.study_name)
            meta = study.user_attrs.get(META_ATTR)
            if meta is None and self.lock_file is None:
                meta = self._wait_for_initialiser(study)
            if meta is None:
                self._initialise(study)
            else:
                self._check_compatible(meta)
        return study

    def _wait_for_initialiser(self, study) -> dict | None:
        # Without a file lock (PostgreSQL, several machines) the creator of the study queues the
        # grid; others wait for its marker, and take over after the grace period.
        deadline = time.monotonic() + self.settings.grace_seconds
        while time.monotonic() < deadline:
            meta = study.user_attrs.get(META_ATTR)
            if meta is not None:
                return meta
            time.sleep(min(self.settings.poll_seconds, 1.0))
        return None

    def _initialise(self, study) -> None:
        meta = self.meta()
        if self.settings.sampler == "grid":
            points = grid_points(self.specs)
            indices = np.arange(len(points))
            if self.settings.n_trials < len(points):
                rng = np.random.default_rng(self.settings.seed)
                indices = np.sort(rng.choice(len(points), size=self.settings.n_trials, replace=False))
                log.warning("grid has %d points but n_trials=%d: visiting a seeded random subset",
                            len(points), self.settings.n_trials)
            queued = {t.user_attrs.get("grid_index") for t in study.get_trials(deepcopy=False)}
            for i in indices:
                if int(i) not in queued:  # a takeover after a crashed initialiser queues the rest
                    study.enqueue_trial(points[i], user_attrs={"grid_index": int(i)})
            meta["n_grid"] = int(len(indices))
            meta["grid_size"] = len(points)
        elif self.settings.baseline_trial:
            base = base_values(self.base, self.specs)
            if base is None:
                log.info("the base config's values are not all inside the search space: no baseline trial")
            elif not any(t.user_attrs.get("baseline") for t in study.get_trials(deepcopy=False)):
                study.enqueue_trial(base, user_attrs={"baseline": True})
        study.set_user_attr(META_ATTR, meta)

    def _check_compatible(self, meta: dict) -> None:
        mine = self.meta()
        for key in ("space", "sampler", "metric", "direction"):
            if _normalise(meta.get(key)) != _normalise(mine.get(key)):
                raise SweepError(
                    f"study {self.settings.study_name!r} in {self.url} was created with a different "
                    f"sweep.{key} ({meta.get(key)!r}, now {mine.get(key)!r}); use a new workdir, "
                    "--storage or --study-name to start a new study")
        if self.settings.sampler == "grid" and self.settings.n_trials != meta.get("n_grid"):
            log.info("grid study: n_trials is fixed by the grid (%s trials)", meta.get("n_grid"))


def base_values(base: ml_collections.ConfigDict, specs: Sequence[ParamSpec]) -> dict | None:
    """The base config's values of the searched keys, or None if one lies outside its entry."""
    values = {}
    for spec in specs:
        node: Any = base
        for part in spec.key.split("."):
            node = node[part]
        if not spec.contains(node):
            return None
        values[spec.key] = node
    return values


def _normalise(value: Any) -> Any:
    """JSON round trip (tuples -> lists, ints vs floats kept) to compare stored metadata."""
    return json.loads(json.dumps(value))


def make_sampler(settings: SweepSettings, seed: int):
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if settings.sampler == "tpe":
            return optuna.samplers.TPESampler(seed=seed, n_startup_trials=settings.tpe_startup_trials,
                                              multivariate=True, constant_liar=True)
        # random, and grid (whose trials are all queued with fixed parameters)
        return optuna.samplers.RandomSampler(seed=seed)


def make_pruner(settings: SweepSettings):
    import optuna

    if settings.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=settings.pruner_startup_trials,
                                           n_warmup_steps=settings.pruner_warmup_steps)
    if settings.pruner == "asha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=settings.asha_min_resource,
                                                      reduction_factor=settings.asha_reduction_factor)
    return optuna.pruners.NopPruner()


def trial_sampler_seed(seed: int, trial_number: int) -> int:
    """Sampler seed of one trial: distinct per trial, identical when a study is replayed."""
    return int(np.random.SeedSequence([int(seed), int(trial_number)]).generate_state(1)[0] % (2**31 - 1))


def requeue(study, trial, settings: SweepSettings, *, count: bool = True) -> None:
    """Queues a trial whose process died with the same parameters, seed and run directory.

    `count=False` (Ctrl-C) does not use up one of the trial's `max_retries`.
    """
    retries = int(trial.user_attrs.get("retries", 0))
    if count and retries >= settings.max_retries:
        log.warning("trial %d died and was retried %d times already: not re-queued", trial.number, retries)
        return
    keep = {k: trial.user_attrs[k] for k in ("run_dir", "seed", "grid_index") if k in trial.user_attrs}
    study.enqueue_trial(dict(trial.params), user_attrs={**keep, "retry_of": trial.number,
                                                        "retries": retries + int(count)})
    log.warning("trial %d was interrupted: re-queued", trial.number)


def open_existing_study(config: ml_collections.ConfigDict, workdir: str | os.PathLike):
    """(study, specs, settings) of an existing sweep (no training, nothing written)."""
    import optuna

    base, specs, settings = split_sweep_config(config)
    ctx = StudyContext(base, specs, settings, Path(workdir).resolve(), None)
    if ctx.lock_file is not None and not sqlite_path(ctx.url).exists():
        raise SweepError(f"no study database {sqlite_path(ctx.url)}: run the sweep first")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    ctx.storage = ctx.make_storage()
    try:
        study = optuna.load_study(study_name=settings.study_name, storage=ctx.storage)
    except KeyError:
        raise SweepError(f"no study {settings.study_name!r} in {ctx.url}") from None
    return study, specs, settings
