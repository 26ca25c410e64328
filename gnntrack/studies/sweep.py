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
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import datetime
import logging
import math
import os
import signal
import socket
import subprocess
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import ml_collections
import numpy as np

from gnntrack.config import check_known_keys, save_config, set_by_path
from gnntrack.errors import ConfigError, GnnTrackError, InputError
from gnntrack.io.atomic import atomic_path, write_json_atomic, write_text_atomic
from gnntrack.runtime import INTERRUPTED, child_env, exit_after_interrupt, pid_alive, stop_with_parent
from gnntrack.studies.search_space import ParamSpec, apply_params, grid_points, parse_search_space

log = logging.getLogger(__name__)

SAMPLERS = ("grid", "random", "tpe")
PRUNERS = ("none", "median", "asha")
TRIAL_SEEDS = ("same", "per_trial")
STUDY_DB = "study.db"
TRIALS_DIR = "trials"
META_ATTR = "gnntrack_sweep"  # study user attribute: the sweep's identity (space, sampler, metric)
WORKER_STOP_SECONDS = 30.0  # a stopped worker re-queues its trial and exits; then it is killed

TrainFn = Callable[..., Mapping[str, Any]]


class SweepError(GnnTrackError):
    """A sweep cannot continue (failing trials, a worker process died, incompatible study)."""


def default_sweep_config() -> ml_collections.ConfigDict:
    """The `sweep` section of a sweep experiment file (every key with its default).

    Keys:
      space: tuple of search-space entries (see gnntrack.studies.search_space).
      metric, direction: the validation metric optimised (a key of the dict returned by the
        training function and passed to report_fn) and 'maximize' | 'minimize'.
      n_trials: budget: COMPLETE + PRUNED trials the study should hold (grid: capped at the grid
        size; a seeded random subset of the grid when smaller).
      sampler: grid | random | tpe.  seed: sampler seed (trial k samples with a seed derived
        from (seed, k), so resumed and parallel studies do not repeat draws).
      tpe_startup_trials: random trials before TPE models the history.
      pruner: none | median | asha.  pruner_startup_trials, pruner_warmup_steps: median pruner.
        asha_min_resource ('auto' or steps), asha_reduction_factor: successive halving.
      trial_seed: same | per_trial (see module docstring).
      baseline_trial: random/tpe: queue the base config's own values of the searched keys as the
        study's first trial (when they lie in the space), so the summary compares the best trial
        with the unchanged config under identical conditions.
      storage: SQLAlchemy URL ('' = sqlite:///<workdir>/study.db).  study_name: study in storage.
      max_retries: re-queues of a trial whose process died (interrupted, killed, lost heartbeat).
      max_failures: trials failing with an exception before the sweep stops (0 = n_trials).
      heartbeat_seconds, grace_seconds: a RUNNING trial whose heartbeat is older than
        grace_seconds is considered dead (trials of dead local processes are detected at once).
      poll_seconds: how often an idle worker checks for work (waiting for other workers).
    """
    return ml_collections.ConfigDict(dict(
        space=(), metric="val_auc", direction="maximize", n_trials=12, sampler="tpe", seed=0,
        tpe_startup_trials=5, pruner="median", pruner_startup_trials=3, pruner_warmup_steps=0,
        asha_min_resource="auto", asha_reduction_factor=3, trial_seed="same", baseline_trial=True, storage="",
        study_name="sweep", max_retries=2, max_failures=0, heartbeat_seconds=10, grace_seconds=60,
        poll_seconds=2.0))


@dataclasses.dataclass(frozen=True)
class SweepSettings:
    """Validated sweep settings (the `sweep` section minus the search space)."""

    metric: str = "val_auc"
    direction: str = "maximize"
    n_trials: int = 12
    sampler: str = "tpe"
    seed: int = 0
    tpe_startup_trials: int = 5
    pruner: str = "median"
    pruner_startup_trials: int = 3
    pruner_warmup_steps: int = 0
    asha_min_resource: str | int = "auto"
    asha_reduction_factor: int = 3
    trial_seed: str = "same"
    baseline_trial: bool = True
    storage: str = ""
    study_name: str = "sweep"
    max_retries: int = 2
    max_failures: int = 0
    heartbeat_seconds: int = 10
    grace_seconds: int = 60
    poll_seconds: float = 2.0

    def __post_init__(self):
        _choose("sampler", self.sampler, SAMPLERS)
        _choose("pruner", self.pruner, PRUNERS)
        _choose("direction", self.direction, ("maximize", "minimize"))
        _choose("trial_seed", self.trial_seed, TRIAL_SEEDS)
        if not isinstance(self.metric, str) or not self.metric:
            raise ConfigError("config key 'sweep.metric' must name a validation metric such as 'val_auc'")
        for key in ("n_trials", "heartbeat_seconds", "grace_seconds", "asha_reduction_factor"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"config key 'sweep.{key}' must be a positive integer, got {value!r}")
        for key in ("tpe_startup_trials", "pruner_startup_trials", "pruner_warmup_steps", "max_retries",
                    "max_failures"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"config key 'sweep.{key}' must be an integer >= 0, got {value!r}")
        if self.asha_min_resource != "auto" and not (isinstance(self.asha_min_resource, int)
                                                     and self.asha_min_resource >= 1):
            raise ConfigError("config key 'sweep.asha_min_resource' must be 'auto' or a positive integer, "
                              f"got {self.asha_min_resource!r}")
        if self.grace_seconds <= self.heartbeat_seconds:
            raise ConfigError("config key 'sweep.grace_seconds' must exceed 'sweep.heartbeat_seconds'")
        if not self.poll_seconds > 0:
            raise ConfigError(f"config key 'sweep.poll_seconds' must be > 0, got {self.poll_seconds!r}")

    @classmethod
    def from_config(cls, sweep: Mapping[str, Any]) -> "SweepSettings":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in dict(sweep).items() if k in names})


def _choose(key: str, value: Any, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ConfigError(f"config key 'sweep.{key}' must be one of {', '.join(allowed)}, got {value!r}")


@dataclasses.dataclass
class SweepResult:
    """What a sweep found. `trials_df` has one row per trial (see `trials_dataframe`)."""

    best_params: dict
    best_value: float | None
    best_trial: int | None
    best_run_dir: str | None
    trials_df: Any  # pandas.DataFrame
    study_name: str
    storage: str
    workdir: str


# ---------------------------------------------------------------------------------------------
# Entry points

def split_sweep_config(config: ml_collections.ConfigDict
                       ) -> tuple[ml_collections.ConfigDict, list[ParamSpec], SweepSettings]:
    """Splits an experiment config into (base run config, validated search space, settings)."""
    if "sweep" not in config:
        raise ConfigError("the experiment config has no 'sweep' section: define config.sweep = "
                          "gnntrack.studies.sweep.default_sweep_config() and set config.sweep.space")
    sweep = config.sweep
    if isinstance(sweep, ml_collections.ConfigDict):
        check_known_keys(sweep, default_sweep_config(), where="sweep")
        sweep = sweep.to_dict()
    base = ml_collections.ConfigDict({k: copy.deepcopy(config[k]) for k in config.keys() if k != "sweep"})
    base.lock()
    settings = SweepSettings.from_config({**default_sweep_config().to_dict(), **dict(sweep)})
    specs = parse_search_space(sweep.get("space", ()), base)
    return base, specs, settings


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
    ctx = _Context(base, specs, settings, workdir.resolve(), train_fn)
    study = ctx.open_study()
    with _stop_on_signals((signal.SIGINT,)):
        children = []
        try:
            children = _spawn_workers(workers - 1, (base, specs, settings, str(ctx.workdir), train_fn),
                                      ctx.workdir)
            _worker_loop(ctx, study, show_progress=show_progress)
        except BaseException:  # Ctrl-C (the workers got it too), an error: each worker re-queues its trial
            _take_stop()
            _stop_workers(children)
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


def _spawn_workers(n: int, payload: tuple, workdir: Path) -> list:
    """Starts `n` worker processes (fresh interpreters: no fork of a process holding JAX threads,
    and no re-import of the caller's __main__). The train function travels pickled by reference,
    so it must be a module-level function importable with the caller's sys.path."""
    import pickle
    import sys

    if n <= 0:
        return []
    path = workdir / "workers.pkl"
    try:
        with atomic_path(path) as tmp:
            tmp.write_bytes(pickle.dumps(payload))
    except (pickle.PicklingError, AttributeError, TypeError) as exc:
        raise ConfigError(f"workers > 1 needs a module-level (picklable) train function: {exc}") from None
    env = child_env()  # huge pages as the gnntrack command has; the worker stops when this process dies
    code = "import sys; from gnntrack.studies.sweep import worker_main; worker_main(sys.argv[1])"
    procs = []
    for index in range(1, n + 1):
        with open(workdir / f"worker_{index}.log", "ab") as logfile:
            procs.append(subprocess.Popen([sys.executable, "-c", code, str(path)], env=env,
                                          stdout=logfile, stderr=subprocess.STDOUT))
    return procs


def _stop_workers(procs: Sequence[subprocess.Popen], grace_s: float = WORKER_STOP_SECONDS) -> None:
    """Asks worker processes to stop (SIGTERM: each re-queues its running trial and exits, see
    `worker_main`), waits up to `grace_s` seconds, then kills those still running (their trials
    are re-queued by the next run, which finds their processes gone)."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + grace_s
    try:
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(deadline - time.monotonic(), 0.0))
    finally:  # also when the wait itself is interrupted
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


class _StopSignals:
    """Stop signals (SIGINT: Ctrl-C; SIGTERM in a worker) raise KeyboardInterrupt in the main
    thread, so that the running trial is handed back (`run_trial`) and the process stops.

    Python drops a KeyboardInterrupt raised while the interpreter runs a gc callback or __del__
    (jax registers a gc callback, so a stop request could vanish), so it is raised again every
    `resend_s` seconds until the process has taken it (`take`); after that the signals are
    ignored, so that they cannot interrupt the hand-back: a terminal's Ctrl-C reaches every local
    worker, and the parent's stop request follows it.
    """

    def __init__(self, resend_s: float = 1.0):
        self.resend_s = resend_s
        self.signum: int | None = None
        self.taken = threading.Event()

    def _handler(self, signum, frame):
        if self.taken.is_set():
            return
        if self.signum is None:
            self.signum = signum
            threading.Thread(target=self._resend, name="gnntrack-stop", daemon=True).start()
        raise KeyboardInterrupt(signal.Signals(self.signum).name)

    def _resend(self) -> None:
        while not self.taken.wait(self.resend_s):
            os.kill(os.getpid(), self.signum)

    def take(self) -> None:
        self.taken.set()


_stop_signals: _StopSignals | None = None  # while `_stop_on_signals` is active


@contextlib.contextmanager
def _stop_on_signals(signums: Sequence[int]) -> Iterator[None]:
    """Handles `signums` with a _StopSignals for the block (main thread only; restores the
    previous handlers after it)."""
    global _stop_signals
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stopper, previous = _StopSignals(), {s: signal.getsignal(s) for s in signums}
    for signum in signums:
        signal.signal(signum, stopper._handler)
    _stop_signals = stopper
    try:
        yield
    finally:
        stopper.take()
        _stop_signals = None
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _take_stop() -> None:
    """This process is stopping (it caught the KeyboardInterrupt): no further one from its stop
    signals."""
    if _stop_signals is not None:
        _stop_signals.take()


def worker_main(payload_path: str) -> None:
    """Entry point of a spawned local worker process (see _spawn_workers).

    Stops cleanly on SIGINT or SIGTERM, which it also gets when the process that started it dies.
    """
    import pickle

    handler = logging.StreamHandler()  # the worker's log file: the sweep's lines only
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    with _stop_on_signals((signal.SIGINT, signal.SIGTERM)):
        stop_with_parent(signal.SIGTERM)
        try:
            base, specs, settings, workdir, train_fn = pickle.loads(Path(payload_path).read_bytes())
            ctx = _Context(base, specs, settings, Path(workdir), train_fn)
            _worker_loop(ctx, ctx.open_study(), show_progress=False)
        except KeyboardInterrupt as exc:
            _take_stop()
            log.warning("worker pid %d stopped by %s", os.getpid(), exc or "SIGINT")
            exit_after_interrupt(INTERRUPTED)  # no interpreter teardown under a running XLA compilation


# ---------------------------------------------------------------------------------------------
# Study storage, initialisation and the worker loop

def default_storage_url(workdir: str | os.PathLike) -> str:
    """sqlite:///<absolute workdir>/study.db"""
    return f"sqlite:///{Path(workdir).resolve() / STUDY_DB}"


def _sqlite_path(url: str) -> Path | None:
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        return Path(url[len("sqlite:///"):])
    return None


def _connect_sqlite(path: Path):
    """A SQLite connection that waits for locks (several workers) and commits cheaply.

    WAL journal + synchronous=NORMAL: a commit no longer waits for an fsync (dozens per trial),
    and a killed process cannot corrupt the database (an OS crash may lose the last commits).
    WAL needs a local file system, as SQLite with several processes does anyway.
    """
    import sqlite3

    connection = sqlite3.connect(str(path), timeout=300, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    return connection


class _Context:
    """Everything a worker needs; cheap to rebuild in a spawned process."""

    def __init__(self, base, specs, settings: SweepSettings, workdir: Path, train_fn):
        self.base, self.specs, self.settings, self.workdir = base, list(specs), settings, Path(workdir)
        self.train_fn = train_fn
        self.url = settings.storage or default_storage_url(self.workdir)
        self.lock_file = None
        db = _sqlite_path(self.url)
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
        db = _sqlite_path(self.url)
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
                heartbeat_stale_trial_callback=lambda study, trial: _requeue(study, trial, self.settings))

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
                                            direction=s.direction, sampler=_make_sampler(s, 0),
                                            pruner=_make_pruner(s))
                log.info("created study %r in %s", s.study_name, self.url)
            except optuna.exceptions.DuplicatedStudyError:
                study = optuna.load_study(study_name=s.study_name, storage=self.storage,
                                          sampler=_make_sampler(s, 0), pruner=_make_pruner(s))
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
    import json

    return json.loads(json.dumps(value))


def _make_sampler(settings: SweepSettings, seed: int):
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if settings.sampler == "tpe":
            return optuna.samplers.TPESampler(seed=seed, n_startup_trials=settings.tpe_startup_trials,
                                              multivariate=True, constant_liar=True)
        # random, and grid (whose trials are all queued with fixed parameters)
        return optuna.samplers.RandomSampler(seed=seed)


def _make_pruner(settings: SweepSettings):
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


def _requeue(study, trial, settings: SweepSettings, *, count: bool = True) -> None:
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


def fail_stale_trials(ctx: _Context, study) -> list[int]:
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
            _requeue(study, ctx.storage.get_trial(trial_id), ctx.settings)
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


def _count(study) -> _Counts:
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    states = [t.state for t in trials]
    failed = sum(1 for t in trials if t.state == TrialState.FAIL and "error" in t.user_attrs)
    return _Counts(done=sum(s in (TrialState.COMPLETE, TrialState.PRUNED) for s in states),
                   running=states.count(TrialState.RUNNING), waiting=states.count(TrialState.WAITING),
                   failed=failed)


def _claim(ctx: _Context, study):
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
        counts = _count(study)
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
            # optuna warns that heartbeats are meant for Study.optimize: we beat ourselves (_Heartbeat)
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


def _worker_loop(ctx: _Context, study, *, show_progress: bool = True) -> None:
    """Claims and runs trials until the study's budget is met."""
    from tqdm.auto import tqdm

    target = ctx.settings.n_trials
    if ctx.settings.sampler == "grid":
        target = study.user_attrs.get(META_ATTR, {}).get("n_grid", target)
    bar = tqdm(total=target, desc="sweep trials", unit="trial", disable=not show_progress or None)
    try:
        while True:
            bar.n = min(_count(study).done, target)
            bar.refresh()
            claimed = _claim(ctx, study)
            if claimed is None:
                break
            if claimed == "wait":
                time.sleep(ctx.settings.poll_seconds)
                continue
            run_trial(ctx, study, claimed)
        bar.n = min(_count(study).done, target)
        bar.refresh()
    finally:
        bar.close()


class _Heartbeat:
    """Records the trial's heartbeat every `interval` seconds in a daemon thread.

    Optuna beats only inside `Study.optimize` (its heartbeat thread is private); the sweep's
    workers use ask/tell (see `_claim`), so they beat themselves through the storage's public
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


def run_trial(ctx: _Context, study, trial) -> str:
    """Trains one claimed trial and tells the study its outcome; returns the final state name.

    Stopped at any point (Ctrl-C, SIGTERM: KeyboardInterrupt; SystemExit), the trial is handed
    back: FAIL, and re-queued with the same parameters, seed and run directory (the training
    resumes from its checkpoint) without using up one of its retries.
    """
    start = time.monotonic()
    try:
        return _train_trial(ctx, study, trial, start)
    except (KeyboardInterrupt, SystemExit):
        _take_stop()
        _hand_back(ctx, study, trial, time.monotonic() - start)
        raise


def _hand_back(ctx: _Context, study, trial, duration_s: float) -> None:
    """FAIL + re-queue (not counted as a retry) for a trial that is still RUNNING."""
    from optuna.trial import TrialState

    trial_id = ctx.trial_id(trial.number)
    if ctx.storage.get_trial(trial_id).state != TrialState.RUNNING:
        return  # stopped after its outcome was told
    trial.set_user_attr("duration_s", round(duration_s, 3))
    study.tell(trial, state=TrialState.FAIL)
    _requeue(study, ctx.storage.get_trial(trial_id), ctx.settings, count=False)


def _train_trial(ctx: _Context, study, trial, start: float) -> str:
    from optuna.trial import TrialState

    s = ctx.settings
    # Each trial samples with its own seed: deterministic when replayed, distinct across workers.
    study.sampler = _make_sampler(s, trial_sampler_seed(s.seed, trial.number))
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
        from gnntrack.train.loop import train_and_evaluate as train_fn
    with _Heartbeat(ctx.storage, ctx.trial_id(trial.number), s.heartbeat_seconds):
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
    import json

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


# ---------------------------------------------------------------------------------------------
# Results: table, summary, plots

def trials_dataframe(study, specs: Sequence[ParamSpec], settings: SweepSettings):
    """One row per trial (surplus claims left out).

    Columns: number, state, value (COMPLETE: final metric; PRUNED: last reported value), one
    column per parameter key, seed, last_step (last reported step), duration_s, run_dir,
    retry_of, note (error message or "re-queued as #k").
    """
    import pandas as pd

    trials = [t for t in study.get_trials(deepcopy=False) if not t.user_attrs.get("surplus")]
    requeued = {t.user_attrs["retry_of"]: t.number for t in trials if "retry_of" in t.user_attrs}
    rows = []
    for t in trials:
        value = t.value if t.values else None
        if value is None and t.intermediate_values:
            value = t.intermediate_values[max(t.intermediate_values)]
        note = t.user_attrs.get("error", "")
        if t.number in requeued:
            note = f"interrupted; re-queued as #{requeued[t.number]}"
        rows.append({
            "number": t.number, "state": t.state.name, "value": value,
            **{spec.key: t.params.get(spec.key) for spec in specs},
            "seed": t.user_attrs.get("seed"),
            "last_step": max(t.intermediate_values) if t.intermediate_values else None,
            "duration_s": t.user_attrs.get("duration_s"), "run_dir": t.user_attrs.get("run_dir"),
            "retry_of": t.user_attrs.get("retry_of"),
            "note": "; ".join(n for n in ("baseline (base config)" if t.user_attrs.get("baseline") else "",
                                          note) if n)})
    columns = ["number", "state", "value", *[s.key for s in specs], "seed", "last_step", "duration_s",
               "run_dir", "retry_of", "note"]
    return pd.DataFrame(rows, columns=columns)


def best_row(df, settings: SweepSettings):
    """The COMPLETE row with the best value (None if no trial completed)."""
    complete = df[(df["state"] == "COMPLETE") & df["value"].notna()]
    if complete.empty:
        return None
    order = complete["value"].astype(float)
    return complete.loc[order.idxmax() if settings.direction == "maximize" else order.idxmin()]


def sweep_result(study, specs, settings: SweepSettings, workdir: Path) -> SweepResult:
    df = trials_dataframe(study, specs, settings)
    best = best_row(df, settings)
    return SweepResult(
        best_params={} if best is None else {s.key: _py(best[s.key]) for s in specs},
        best_value=None if best is None else float(best["value"]),
        best_trial=None if best is None else int(best["number"]),
        best_run_dir=None if best is None else str(workdir / best["run_dir"]),
        trials_df=df, study_name=settings.study_name,
        storage=settings.storage or default_storage_url(workdir), workdir=str(workdir))


def _py(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def param_importances(study, specs: Sequence[ParamSpec]) -> tuple[str, dict[str, float]]:
    """(evaluator name, importances normalised to sum 1) over COMPLETE trials.

    fANOVA when scikit-learn is installed, else PED-ANOVA (optuna's own, no extra dependency).
    ({} when fewer than 2 complete trials or the evaluator cannot cope, e.g. no variation.)
    """
    import importlib.util

    import optuna
    from optuna.trial import TrialState

    if importlib.util.find_spec("sklearn") is not None:
        name, evaluator = "fANOVA", optuna.importance.FanovaImportanceEvaluator(seed=0)
    else:
        name, evaluator = "PED-ANOVA", optuna.importance.PedAnovaImportanceEvaluator()
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2:
        return name, {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return name, {k: float(v) for k, v in optuna.importance.get_param_importances(
                study, evaluator=evaluator, params=[s.key for s in specs]).items()}
    except Exception as exc:  # e.g. a parameter that never varied among complete trials
        log.info("parameter importances unavailable: %r", exc)
        return name, {}


def markdown_table(df, float_digits: int = 4) -> str:
    """A GitHub markdown table of `df` (no tabulate dependency)."""
    def fmt(v):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return ""
        if isinstance(v, (float, np.floating)):
            return f"{v:.{float_digits}g}"
        return str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(map(str, df.columns)) + " |", "|" + "---|" * len(df.columns)]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(fmt(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def write_sweep_summary(study, workdir: str | os.PathLike, specs: Sequence[ParamSpec],
                        settings: SweepSettings) -> dict:
    """Writes summary.json, trials.csv, trials.md and the plots under `workdir`; returns the summary."""
    workdir = Path(workdir)
    df = trials_dataframe(study, specs, settings)
    best = best_row(df, settings)
    evaluator, importances = param_importances(study, specs)
    counts = df["state"].value_counts().to_dict()
    if summary_baseline := baseline_summary(df, best, settings):
        summary_baseline["metrics"] = _val_metrics(study, summary_baseline["trial"])
    summary = {
        "study": settings.study_name, "storage": settings.storage or default_storage_url(workdir),
        "metric": settings.metric, "direction": settings.direction, "sampler": settings.sampler,
        "pruner": settings.pruner, "n_trials_target": settings.n_trials,
        "counts": {k: int(v) for k, v in counts.items()},
        "best": None if best is None else {
            "trial": int(best["number"]), "value": float(best["value"]),
            "params": {s.key: _py(best[s.key]) for s in specs}, "seed": _py(best["seed"]),
            "run_dir": str(best["run_dir"]), "metrics": _val_metrics(study, int(best["number"]))},
        "baseline": summary_baseline,
        "param_importances": importances, "importance_evaluator": evaluator,
        "space": [s.to_dict() for s in specs],
    }
    write_json_atomic(workdir / "summary.json", summary)
    with atomic_path(workdir / "trials.csv") as tmp:
        df.to_csv(tmp, index=False)
    head = [f"# Sweep `{settings.study_name}`: {settings.metric} ({settings.direction}), "
            f"{settings.sampler} sampler, {settings.pruner} pruner\n"]
    if best is not None:
        params = ", ".join(f"{s.key}={_fmt_param(best[s.key])}" for s in specs)
        head.append(f"Best: trial {int(best['number'])}, {settings.metric} = {float(best['value']):.4f} "
                    f"({params}); run dir `{best['run_dir']}`.\n")
    if summary["baseline"] is not None:
        b = summary["baseline"]
        head.append(f"Baseline (the base config, trial {b['trial']}): {settings.metric} = {b['value']:.4f}; "
                    f"best - baseline = {b['improvement']:+.4f}.\n")
    if importances:
        head.append(f"Parameter importances ({evaluator}): "
                    + ", ".join(f"{k} {v:.2f}" for k, v in importances.items()) + ".\n")
    write_text_atomic(workdir / "trials.md", "\n".join(head) + "\n" + markdown_table(df))
    write_sweep_plots(df, importances, specs, settings, workdir, evaluator=evaluator)
    return summary


def _val_metrics(study, number: int) -> dict:
    """The final validation metrics (val_*) a trial's training returned."""
    metrics = study.get_trials(deepcopy=False)[number].user_attrs.get("final_metrics", {})
    return {k: v for k, v in metrics.items() if k.startswith("val_")}


def baseline_summary(df, best, settings: SweepSettings) -> dict | None:
    """The baseline trial's value and best - baseline (signed so that > 0 means better)."""
    rows = df[df["note"].str.startswith("baseline") & (df["state"] == "COMPLETE")]
    if rows.empty or best is None:
        return None
    value = float(rows["value"].iloc[0])
    sign = 1.0 if settings.direction == "maximize" else -1.0
    return {"trial": int(rows["number"].iloc[0]), "value": value,
            "improvement": sign * (float(best["value"]) - value)}


def _fmt_param(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, (float, np.floating)) else str(v)


def write_sweep_plots(df, importances: Mapping[str, float], specs: Sequence[ParamSpec],
                      settings: SweepSettings, out_dir: str | os.PathLike, *, evaluator: str = "fANOVA"
                      ) -> list[Path]:
    """history.png, importances.png and parallel_coordinates.png under `out_dir`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    paths = []
    for name, draw in (("history.png", _plot_history), ("importances.png", _plot_importances),
                       ("parallel_coordinates.png", _plot_parallel)):
        fig = draw(plt, df, importances, specs, settings, evaluator)
        path = out_dir / name
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, bbox_inches="tight")
        plt.close(fig)
        paths.append(path)
    return paths


def _plot_history(plt, df, importances, specs, settings, evaluator):
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    complete = df[df["state"] == "COMPLETE"]
    pruned = df[(df["state"] == "PRUNED") & df["value"].notna()]
    ax.scatter(complete["number"], complete["value"], color="tab:blue", label="complete", zorder=3)
    if not pruned.empty:
        ax.scatter(pruned["number"], pruned["value"], color="tab:gray", marker="x",
                   label="pruned (last reported)", zorder=3)
    baseline = df[df["note"].str.startswith("baseline") & (df["state"] == "COMPLETE")]
    if not baseline.empty:
        ax.axhline(float(baseline["value"].iloc[0]), color="tab:green", ls="--", lw=1,
                   label=f"baseline (trial {int(baseline['number'].iloc[0])}, base config)")
    if not complete.empty:
        values = complete["value"].astype(float).to_numpy()
        best = np.maximum.accumulate(values) if settings.direction == "maximize" else np.minimum.accumulate(values)
        ax.step(complete["number"], best, where="post", color="tab:red", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(settings.metric)
    ax.set_title(f"Optimisation history ({settings.sampler}, {settings.pruner} pruner)")
    ax.grid(alpha=0.3)
    if not complete.empty or not pruned.empty:
        ax.legend(loc="best", fontsize=8)
    return fig


def _plot_importances(plt, df, importances, specs, settings, evaluator):
    fig, ax = plt.subplots(figsize=(6.4, 0.5 + 0.45 * max(len(specs), 2)))
    if importances:
        keys = list(importances)[::-1]  # most important on top
        ax.barh(keys, [importances[k] for k in keys], color="tab:blue")
        ax.set_xlabel(f"importance for {settings.metric} ({evaluator}, sums to 1)")
        ax.set_xlim(0, 1)
    else:
        ax.text(0.5, 0.5, "not enough complete trials\nfor parameter importances", ha="center",
                va="center", transform=ax.transAxes)
        ax.set_axis_off()
    ax.set_title("Parameter importances")
    return fig


def _axis_position(spec: ParamSpec, values) -> tuple[np.ndarray, list[tuple[float, str]]]:
    """Maps parameter values to [0, 1] (log axes for log params) and returns tick labels."""
    if spec.distribution == "categorical":
        labels = [str(c) for c in spec.choices]
        index = {str(c): i for i, c in enumerate(spec.choices)}
        n = max(len(labels) - 1, 1)
        pos = np.array([index.get(str(v), np.nan) / n for v in values], dtype=float)
        return pos, [(i / n, lab) for i, lab in enumerate(labels)]
    lo, hi = float(spec.low), float(spec.high)
    x = np.asarray([np.nan if v is None else float(v) for v in values], dtype=float)
    if spec.log:
        lo, hi, x = np.log10(lo), np.log10(hi), np.log10(x)
    span = (hi - lo) or 1.0
    suffix = " (log)" if spec.log else ""
    ticks = [(0.0, f"{spec.low:.3g}{suffix}"), (1.0, f"{spec.high:.3g}{suffix}")]
    return (x - lo) / span, ticks


def _plot_parallel(plt, df, importances, specs, settings, evaluator):
    fig, ax = plt.subplots(figsize=(1.8 * (len(specs) + 1) + 1.5, 4.2))
    data = df[(df["state"] == "COMPLETE") & df["value"].notna()]
    n_axes = len(specs) + 1
    if data.empty:
        ax.text(0.5, 0.5, "no complete trials yet", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    values = data["value"].astype(float).to_numpy()
    vlo, vhi = float(values.min()), float(values.max())
    columns, tick_sets = [], []
    for spec in specs:
        pos, ticks = _axis_position(spec, data[spec.key].tolist())
        columns.append(pos)
        tick_sets.append(ticks)
    columns.append((values - vlo) / ((vhi - vlo) or 1.0))
    tick_sets.append([(0.0, f"{vlo:.4g}"), (1.0, f"{vhi:.4g}")])
    grid = np.stack(columns, axis=1)  # [trials, axes]
    cmap = plt.get_cmap("viridis" if settings.direction == "maximize" else "viridis_r")
    colour = (values - vlo) / ((vhi - vlo) or 1.0)
    order = np.argsort(colour if settings.direction == "maximize" else -colour)  # best drawn last
    xs = np.arange(n_axes)
    for i in order:
        ax.plot(xs, grid[i], color=cmap(colour[i]), alpha=0.8, lw=1.5)
    for x, ticks in zip(xs, tick_sets):
        ax.axvline(x, color="black", lw=0.8)
        for y, label in ticks:
            ax.text(x + 0.04, y, label, fontsize=7, va="center")
    ax.set_xticks(xs, [s.key for s in specs] + [settings.metric], rotation=15, fontsize=8)
    ax.set_yticks([])
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlim(-0.2, n_axes - 0.6)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    sm = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(vlo, vhi))
    fig.colorbar(sm, ax=ax, label=settings.metric, pad=0.02)
    ax.set_title("Parallel coordinates (complete trials)")
    return fig


def open_existing_study(config: ml_collections.ConfigDict, workdir: str | os.PathLike):
    """(study, specs, settings) of an existing sweep (no training, nothing written)."""
    import optuna

    base, specs, settings = split_sweep_config(config)
    ctx = _Context(base, specs, settings, Path(workdir).resolve(), None)
    if ctx.lock_file is not None and not _sqlite_path(ctx.url).exists():
        raise SweepError(f"no study database {_sqlite_path(ctx.url)}: run the sweep first")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    ctx.storage = ctx.make_storage()
    try:
        study = optuna.load_study(study_name=settings.study_name, storage=ctx.storage)
    except KeyError:
        raise SweepError(f"no study {settings.study_name!r} in {ctx.url}") from None
    return study, specs, settings


def load_sweep_result(config: ml_collections.ConfigDict, workdir: str | os.PathLike) -> SweepResult:
    """Reads an existing study (no training) and returns its SweepResult."""
    study, specs, settings = open_existing_study(config, workdir)
    return sweep_result(study, specs, settings, Path(workdir).resolve())
