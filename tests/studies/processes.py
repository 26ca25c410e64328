"""Process helpers for the tests that interrupt or kill sweeps and launched runs (Linux /proc)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import pytest

T = TypeVar("T")

needs_proc = pytest.mark.skipif(not sys.platform.startswith("linux") or not Path("/proc/self/stat").exists(),
                                reason="reads processes from Linux /proc")


def gone(pid: int) -> bool:
    """The process has ended (no entry, or a zombie that nobody reaped yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"


def children(pid: int) -> list[int]:
    """PIDs of the live processes whose parent is `pid`."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(pid) and not gone(int(fields["Pid"])):
            found.append(int(fields["Pid"]))
    return sorted(found)


def wait_for(condition: Callable[[], T], timeout_s: float, what: str, proc: subprocess.Popen | None = None,
             log: Path | None = None) -> T:
    """Polls `condition` until it returns something truthy (returned); fails after `timeout_s`
    seconds, or at once when `proc` has exited meanwhile (showing the end of its `log`)."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            tail = log.read_text()[-3000:] if log is not None and log.exists() else ""
            pytest.fail(f"the process ended (rc {proc.returncode}) before {what}:\n{tail}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {timeout_s} s")
        time.sleep(0.2)


def _start_like_a_terminal_job() -> None:
    """In the child before exec: SIGINT and SIGTERM at their defaults and not blocked, as a
    terminal starts a foreground job. An ignored disposition or a blocked mask would otherwise be
    inherited from the test process (whatever ran before it in the same pytest worker)."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)


@contextlib.contextmanager
def process_group(command: list[str], log: Path | None = None) -> Iterator[subprocess.Popen]:
    """Runs `command` in a session of its own, so that its processes form one group that the test
    signals as a terminal signals its foreground job; stdout and stderr go to `log` (else stdout
    is a text pipe). At the end whatever still runs of the group is killed (a failed test)."""
    if log is None:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, start_new_session=True,
                                preexec_fn=_start_like_a_terminal_job)
    else:
        with open(log, "wb") as out:
            proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                    preexec_fn=_start_like_a_terminal_job)
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
