"""Process-level settings that must be made before the process's C library starts.

Huge pages for XLA:CPU's host buffers (glibc tunable `glibc.malloc.hugetlb=1`).

Why: XLA:CPU allocates each execution's temporary buffers afresh (one block the size of the
step's peak temp memory, plus the matmul kernels' scratch) and frees them when the execution
ends. glibc serves blocks that large with a fresh `mmap` and returns them with `munmap`, so every
step page-faults all of them in again, one 4 KiB page at a time, and spends much of the step in
the kernel (the README's benchmark section has the counts). With the tunable, glibc asks the
kernel for transparent huge pages (`madvise(MADV_HUGEPAGE)`) on those blocks: a few hundred
faults per step instead, and fewer TLB misses in the step itself.

Why not simply keep the freed memory (mallopt: one arena, no mmap, no trimming)? It removes the
faults too, but large blocks then share the heap with small long-lived allocations and fragment
it: the resident memory of a run with several forced host devices more than doubles.
Huge pages leave glibc's allocation policy, and so the process's memory, as it was.

glibc reads tunables only at process start, from the environment variable GLIBC_TUNABLES, so
the `gnntrack` command (`entry_point`) re-executes itself once with the variable set, and the
subprocesses gnntrack starts get it in their environment (`allocator_env`). Off Linux/glibc, with
transparent huge pages disabled by the system, or with `GNNTRACK_HOST_ALLOCATOR=default`, nothing
changes. Library code never re-executes anything: only the command-line entry point does. The
re-executed command is the same process (same PID, `execve`), so there is no wrapper process
between a terminal and the command: Ctrl-C and kill reach the command itself.

Worker processes (sweep workers, `--num-processes` processes, device-study runs) stop when the
process that started them dies, also by kill -9: `child_env` names the starting process and the
worker calls `stop_with_parent` (Linux: a parent-death signal; elsewhere, and as a backstop, a
thread that watches the parent). After Ctrl-C a command ends with `exit_after_interrupt`.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import platform
import signal
import sys
import threading
import time
from pathlib import Path
from typing import NoReturn

from gnntrack._compat import xla_clients

ENV_VAR = "GNNTRACK_HOST_ALLOCATOR"   # "default": leave glibc's malloc alone
PARENT_ENV_VAR = "GNNTRACK_PARENT_PID"  # set by child_env: the process a worker must not outlive
INTERRUPTED = 130                       # exit status after Ctrl-C (128 + SIGINT), as shells report it
TUNABLE = "glibc.malloc.hugetlb=1"     # glibc >= 2.35; older versions ignore it
_THP_MODE = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def wanted() -> bool:
    """Whether huge pages should be requested: Linux with glibc, transparent huge pages not
    disabled by the system, and not opted out with GNNTRACK_HOST_ALLOCATOR=default."""
    if os.environ.get(ENV_VAR, "").strip().lower() == "default":
        return False
    if sys.platform != "linux" or platform.libc_ver()[0] != "glibc":
        return False
    return transparent_hugepage_mode() not in ("never", "unavailable")


def transparent_hugepage_mode() -> str:
    """The kernel's THP mode: 'always' | 'madvise' | 'never', or 'unavailable'."""
    try:
        text = _THP_MODE.read_text()
    except OSError:
        return "unavailable"
    start, end = text.find("["), text.find("]")
    return text[start + 1:end] if 0 <= start < end else "unavailable"


def _with_tunable(tunables: str) -> str:
    """GLIBC_TUNABLES value `tunables` (colon-separated) with the huge-page tunable added."""
    parts = [p for p in tunables.split(":") if p and not p.startswith("glibc.malloc.hugetlb=")]
    return ":".join(parts + [TUNABLE])


def active(environ=None) -> bool:
    """Whether the huge-page tunable is set in `environ` (default: this process's)."""
    environ = os.environ if environ is None else environ
    return TUNABLE in environ.get("GLIBC_TUNABLES", "").split(":")


def allocator_env(environ=None) -> dict[str, str]:
    """A copy of `environ` (default: os.environ) for a subprocess: with the tunable if `wanted()`."""
    env = dict(os.environ if environ is None else environ)
    if wanted() and not active(env):
        env["GLIBC_TUNABLES"] = _with_tunable(env.get("GLIBC_TUNABLES", ""))
    return env


def _without_tunable(environ) -> dict[str, str]:
    env = dict(environ)
    rest = [p for p in env.get("GLIBC_TUNABLES", "").split(":") if p and p != TUNABLE]
    if rest:
        env["GLIBC_TUNABLES"] = ":".join(rest)
    else:
        env.pop("GLIBC_TUNABLES", None)
    return env


def child_env(environ=None) -> dict[str, str]:
    """Environment for a Python worker gnntrack starts: `allocator_env(environ)` plus this
    process's sys.path ahead of PYTHONPATH, so the worker imports the same gnntrack, and this
    process's PID, so that the worker can stop when this process dies (`stop_with_parent`)."""
    env = allocator_env(environ)
    env["PYTHONPATH"] = os.pathsep.join([p for p in sys.path if p] + [env.get("PYTHONPATH", "")])
    env[PARENT_ENV_VAR] = str(os.getpid())
    return env


def host_allocator_label() -> str:
    """For run provenance: 'hugepages (THP <mode>)' when this process runs with the tunable and
    the kernel can give huge pages, else 'default (THP <mode>)'."""
    mode = transparent_hugepage_mode()
    kind = "hugepages" if active() and mode in ("always", "madvise") else "default"
    return f"{kind} (THP {mode})"


def reexec_with_hugepages(enable: bool = True) -> None:
    """Re-executes this process's command line once so that it runs with the tunable
    (enable=True, if `wanted()`) or without it (enable=False, for A/B measurements); returns
    at once when the process already runs that way. Call first thing in a command-line entry
    point, before any work: the process is replaced, same PID, same arguments."""
    if enable and wanted() and not active():
        env = allocator_env()
    elif not enable and active():
        env = _without_tunable(os.environ)
    else:
        return
    argv = [sys.executable] + list(getattr(sys, "orig_argv", sys.argv))[1:]
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, argv, env)
    except OSError:  # cannot re-execute (unusual sandbox): run as we are
        return


# ---------------------------------------------------------------------------------------------
# Worker processes and interrupts

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def pid_alive(pid: int) -> bool:
    """Whether a process with this PID exists on this machine (a zombie counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _set_parent_death_signal(signum: int) -> bool:
    """Linux: asks the kernel to send `signum` to this process when its parent dies. False
    where that is not available (then only the watching thread of `stop_with_parent` acts)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def stop_with_parent(signum: int = signal.SIGTERM, *, grace_s: float = 30.0, poll_s: float = 1.0) -> bool:
    """In a worker started with `child_env`: sends `signum` to this process when the process
    that started it dies (also by kill -9), so that no orphaned worker goes on working.

    Linux gives the parent-death signal (prctl PR_SET_PDEATHSIG); a daemon thread also checks the
    parent every `poll_s` seconds (other systems; a parent that died before the prctl call; a
    wrapper process in between) and, if `signum` did not end the process within `grace_s`
    seconds (a handler that got stuck), ends it with os._exit. Choose a `signum` whose action
    suits the worker: SIGKILL where an immediate stop is safe (writes are atomic), SIGTERM with
    a handler that stops cleanly. The kernel sends the parent-death signal when the *thread*
    that started the worker ends, so start workers from a thread that outlives them (gnntrack's
    launchers wait for their workers in the thread that started them).

    Returns False (and does nothing) when this process was not started with child_env. The
    variable is removed from this process's environment, so that its own children do not
    inherit it.
    """
    value = os.environ.pop(PARENT_ENV_VAR, "")
    if not value.isdigit():
        return False
    parent = int(value)
    direct = os.getppid() == parent  # else a wrapper process sits in between (or the parent is gone)
    if direct:
        _set_parent_death_signal(signum)

    def parent_gone() -> bool:
        # re-parented (to init or a subreaper) once the parent died; through a wrapper: by its PID
        return os.getppid() != parent if direct else not pid_alive(parent)

    def watch() -> None:
        while not parent_gone():
            time.sleep(poll_s)
        os.kill(os.getpid(), signum)
        time.sleep(grace_s)
        os._exit(128 + int(signum))

    threading.Thread(target=watch, name="gnntrack-parent-watch", daemon=True).start()
    return True


def exit_after_interrupt(code: int = INTERRUPTED) -> NoReturn:
    """Ends this process after Ctrl-C (or another stop request) without the interpreter's
    teardown: runs the atexit handlers, flushes stdout/stderr and leaves with os._exit(code).

    Why: Ctrl-C interrupts the *wait* for an XLA compilation, not the compilation, which goes on
    in a thread of the XLA client. The interpreter's teardown then destroys the client under that
    thread, and the process dies with a segmentation fault (jaxlib 0.10). By the time a command
    gets here its own clean-up has run (`finally` blocks, trials re-queued, workers stopped), and
    everything it writes is written atomically, so nothing is lost by leaving the rest to the OS.
    The XLA clients are held while the atexit handlers run (jax's own handler drops its
    references to them), so that none is destroyed there either.
    """
    clients = xla_clients()
    try:
        atexit._run_exitfuncs()  # what a normal exit runs: e.g. event-file writers flush and close
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError, AttributeError):
                pass
        os._exit(code)  # `clients` is still referenced here: no client is destroyed
