"""Provenance of a results file: commit, resolved config, library versions, devices, processes.

    prov = provenance(config)                      # a JSON-able dict
    write_results_csv(path, dataframe, prov)        # '# provenance: {...}' header + CSV rows
    df, prov = read_results_csv(path)

Every study writer in gnntrack.studies puts this dict into what it writes (results.json key
`provenance`, a commented first line of results.csv, a section of results.md), so a number can
always be traced to the code and the settings that produced it.
"""

from __future__ import annotations

import datetime
import io
import json
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from gnntrack import __version__
from gnntrack.io.atomic import write_text_atomic
from gnntrack.runtime import host_allocator_label

PROVENANCE_PREFIX = "# provenance: "


def git_commit(cwd: str | os.PathLike | None = None) -> str:
    """`git rev-parse HEAD` of the source tree holding gnntrack (or `cwd`); 'unknown' without git.

    A '+dirty' suffix marks a tree with uncommitted changes to tracked files.
    """
    cwd = Path(cwd) if cwd is not None else Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                              timeout=10)
        if head.returncode != 0:
            return "unknown"
        commit = head.stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=10)
        return commit + ("+dirty" if dirty.returncode == 0 and dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("jax", "jaxlib", "flax", "optax", "numpy", "jraph"):
        module = sys.modules.get(name)
        if module is None:
            try:
                module = __import__(name)
            except ImportError:
                out[name] = "not installed"
                continue
        out[name] = str(getattr(module, "__version__", "unknown"))
    out["gnntrack"] = __version__
    return out


def device_info() -> dict[str, Any]:
    """Devices and processes as JAX sees them (initialises the JAX backend)."""
    import jax

    from gnntrack.nn import cpu_kernels

    devices = jax.devices()
    return {
        "platform": devices[0].platform if devices else "none",
        "device_kind": devices[0].device_kind if devices else "none",
        "n_devices": len(devices), "n_local_devices": jax.local_device_count(),
        "process_index": jax.process_index(), "process_count": jax.process_count(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "host_allocator": host_allocator_label(),
        "cpu_kernels": cpu_kernels.loaded_label(),
        "host_cpus": os.cpu_count(),
    }


def provenance(config: Any = None, *, with_devices: bool = True, extra: dict | None = None) -> dict[str, Any]:
    """A JSON-able provenance record.

    Args:
      config: the resolved config (ConfigDict or dict) stored verbatim; None to omit.
      with_devices: include `device_info()` (initialises JAX).
      extra: more keys merged in (e.g. the device counts of subprocess measurements).
    Returns:
      {commit, created_utc, host, versions, devices?, command, config?, ...extra}
    """
    record: dict[str, Any] = {
        "commit": git_commit(),
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "versions": _versions(),
        "command": " ".join(sys.argv),
        # other work on the host inflates timings: record how busy it was when this was written
        "load_average_1_5_15min": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    if with_devices:
        record["devices"] = device_info()
    if config is not None:
        if hasattr(config, "to_json_best_effort"):
            config = json.loads(config.to_json_best_effort())
        record["config"] = config
    if extra:
        record.update(extra)
    return record


def write_results_csv(path: str | os.PathLike, df, prov: dict[str, Any]) -> None:
    """Writes a DataFrame as CSV atomically, the provenance as a first comment line
    (`read_results_csv` / `pandas.read_csv(path, comment='#')` read it back)."""
    buf = io.StringIO()
    buf.write(PROVENANCE_PREFIX + json.dumps(prov, sort_keys=True, default=str) + "\n")
    df.to_csv(buf, index=False)
    write_text_atomic(path, buf.getvalue())


def read_results_csv(path: str | os.PathLike):
    """(DataFrame, provenance dict) from a file written by `write_results_csv`."""
    import pandas as pd

    path = Path(path)
    with open(path, encoding="utf-8") as f:
        first = f.readline()
    prov = json.loads(first[len(PROVENANCE_PREFIX):]) if first.startswith(PROVENANCE_PREFIX) else {}
    return pd.read_csv(path, comment="#"), prov


def provenance_markdown(prov: dict[str, Any]) -> str:
    """A short markdown section (the full record, config included, is in results.json)."""
    v = prov.get("versions", {})
    d = prov.get("devices", {})
    lines = ["## Provenance", "",
             f"- commit: `{prov.get('commit', 'unknown')}`",
             f"- created: {prov.get('created_utc', '?')} on `{prov.get('host', '?')}`",
             f"- jax {v.get('jax', '?')}, jaxlib {v.get('jaxlib', '?')}, flax {v.get('flax', '?')}, "
             f"optax {v.get('optax', '?')}, python {v.get('python', '?')}"]
    if d:
        lines.append(f"- devices: {d.get('n_devices')} x {d.get('device_kind')} ({d.get('platform')}), "
                     f"processes: {d.get('process_count')}, host CPUs: {d.get('host_cpus')}, "
                     f"XLA_FLAGS: `{d.get('xla_flags') or '-'}`, host allocator: {d.get('host_allocator', '?')}, "
                     f"CPU kernels: {d.get('cpu_kernels', '?')}")
    if prov.get("load_average_1_5_15min"):
        la = prov["load_average_1_5_15min"]
        lines.append(f"- host load average (1/5/15 min) when written: {la[0]:.1f} / {la[1]:.1f} / {la[2]:.1f} "
                     f"(timings are inflated when it exceeds the core count)")
    lines.append(f"- command: `{prov.get('command', '')}`")
    lines.append("- resolved config: `results.json` -> provenance.config")
    return "\n".join(lines) + "\n"
