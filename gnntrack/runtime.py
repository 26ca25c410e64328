"""Process-level settings that must be made before the process's C library starts.

Huge pages for XLA:CPU's host buffers (glibc tunable `glibc.malloc.hugetlb=1`).

Why: XLA:CPU allocates each execution's temporary buffers afresh (one block the size of the
step's peak temp memory, plus the matmul kernels' scratch) and frees them when the execution
ends. glibc serves blocks that large with a fresh `mmap` and returns them with `munmap`, so every
step page-faults all of them in again, one 4 KiB page at a time: the HEP.TrkX train step at the
reference workload (20k nodes / 80k edges, hidden 64, 8 iterations) took ~200,000 minor page
faults (781 MiB) and 0.55-0.75 s of *system* CPU time per step, inference 45,000 faults and
0.12-0.17 s (2-core dev VM, jax 0.10.2; issue 6's note). With the tunable, glibc asks the kernel
for transparent huge pages (`madvise(MADV_HUGEPAGE)`) on those blocks: ~560 faults per train
step, ~0.18 s of system time, and fewer TLB misses in the step itself.

Why not simply keep the freed memory (mallopt: one arena, no mmap, no trimming)? Measured: it
removes the faults too, but large blocks then share the heap with small long-lived allocations
and fragment it; a probe with four forced host devices grew from 0.54 to 1.39 GiB RSS.
Huge pages leave glibc's allocation policy, and so the process's memory, as it was.

glibc reads tunables only at process start, from the environment variable GLIBC_TUNABLES, so
the `gnntrack` command (`entry_point`) re-executes itself once with the variable set, and the
subprocesses gnntrack starts get it in their environment (`allocator_env`). Off Linux/glibc, with
transparent huge pages disabled by the system, or with `GNNTRACK_HOST_ALLOCATOR=default`, nothing
changes. Library code never re-executes anything: only the command-line entry point does.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

ENV_VAR = "GNNTRACK_HOST_ALLOCATOR"   # "default": leave glibc's malloc alone
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
    process's sys.path ahead of PYTHONPATH, so the worker imports the same gnntrack."""
    env = allocator_env(environ)
    env["PYTHONPATH"] = os.pathsep.join([p for p in sys.path if p] + [env.get("PYTHONPATH", "")])
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
