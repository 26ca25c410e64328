"""Local worker processes (`workers=N`): starting them, stopping them, and their entry point."""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

from gnntrack.errors import ConfigError
from gnntrack.io.atomic import atomic_path
from gnntrack.runtime import INTERRUPTED, child_env, exit_after_interrupt, stop_with_parent
from gnntrack.studies.sweep.scheduler import worker_loop
from gnntrack.studies.sweep.signals import stop_on_signals, take_stop
from gnntrack.studies.sweep.study import StudyContext

log = logging.getLogger("gnntrack.studies.sweep")  # the package's logger: every module's lines

WORKER_STOP_SECONDS = 30.0  # a stopped worker re-queues its trial and exits; then it is killed


def spawn_workers(n: int, payload: tuple, workdir: Path) -> list:
    """Starts `n` worker processes (fresh interpreters: no fork of a process holding JAX threads,
    and no re-import of the caller's __main__). The train function travels pickled by reference,
    so it must be a module-level function importable with the caller's sys.path."""
    if n <= 0:
        return []
    path = workdir / "workers.pkl"
    try:
        with atomic_path(path) as tmp:
            tmp.write_bytes(pickle.dumps(payload))
    except (pickle.PicklingError, AttributeError, TypeError) as exc:
        raise ConfigError(f"workers > 1 needs a module-level (picklable) train function: {exc}") from None
    env = child_env()  # huge pages as the gnntrack command has; the worker stops when this process dies
    code = "import sys; from gnntrack.studies.sweep.workers import worker_main; worker_main(sys.argv[1])"
    procs = []
    for index in range(1, n + 1):
        with open(workdir / f"worker_{index}.log", "ab") as logfile:
            procs.append(subprocess.Popen([sys.executable, "-c", code, str(path)], env=env,
                                          stdout=logfile, stderr=subprocess.STDOUT))
    return procs


def stop_workers(procs: Sequence[subprocess.Popen], grace_s: float = WORKER_STOP_SECONDS) -> None:
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


def worker_main(payload_path: str) -> None:
    """Entry point of a spawned local worker process (see spawn_workers).

    Stops cleanly on SIGINT or SIGTERM, which it also gets when the process that started it dies.
    """
    handler = logging.StreamHandler()  # the worker's log file: the sweep's lines only
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    with stop_on_signals((signal.SIGINT, signal.SIGTERM)):
        stop_with_parent(signal.SIGTERM)
        try:
            base, specs, settings, workdir, train_fn = pickle.loads(Path(payload_path).read_bytes())
            ctx = StudyContext(base, specs, settings, Path(workdir), train_fn)
            worker_loop(ctx, ctx.open_study(), show_progress=False)
        except KeyboardInterrupt as exc:
            take_stop()
            log.warning("worker pid %d stopped by %s", os.getpid(), exc or "SIGINT")
            exit_after_interrupt(INTERRUPTED)  # no interpreter teardown under a running XLA compilation
