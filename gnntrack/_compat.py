"""The one place for JAX-version shims: code elsewhere calls these instead of testing versions.

    axes = varying_axes(x)              # mesh axes a traced value varies over inside shard_map
    out = vary_like(out, *inputs)       # make `out` vary over every axis its inputs vary over
    clients = xla_clients()             # the XLA clients this process holds ([] before JAX starts)

JAX is imported inside the functions: `gnntrack.runtime` uses this module in processes that may
never load JAX (the CLI before a verb runs).
"""

from __future__ import annotations

import sys
from typing import Any


def varying_axes(x: Any) -> frozenset:
    """Mesh axes over which the traced value `x` is device-varying; empty outside `jax.shard_map`.

    The attribute moved between JAX versions: `aval.vma` (0.7-0.9), `aval.manual_axis_type.varying`
    (0.10, also reachable as `aval.mat`).
    """
    import jax

    aval = jax.typeof(x)
    mat = getattr(aval, "manual_axis_type", None) or getattr(aval, "mat", None)
    if mat is not None and hasattr(mat, "varying"):
        return frozenset(mat.varying)
    return frozenset(getattr(aval, "vma", ()) or ())


def vary_like(outputs: Any, *inputs: Any) -> Any:
    """`outputs` (a pytree) cast device-varying over every mesh axis any of `inputs` varies over.

    Inside `jax.shard_map`, values whose type carries no varying axes (replicated parameters, an FFI
    call's results) must be cast before they meet varying ones in a custom VJP, or autodiff rejects
    a cotangent whose type differs from its primal's. Outside shard_map this returns `outputs`.
    """
    import jax

    axes = frozenset().union(*(varying_axes(x) for x in inputs))

    def cast(out):
        missing = tuple(sorted(axes - varying_axes(out)))
        return jax.lax.pcast(out, missing, to="varying") if missing else out

    return jax.tree_util.tree_map(cast, outputs)


def xla_clients() -> list:
    """The XLA clients this process has created: [] when it has not imported JAX, has started no
    backend, or runs a JAX whose private `xla_bridge` differs (JAX has no public way to ask
    without creating a client)."""
    if "jax" not in sys.modules:
        return []
    try:
        from jax._src import xla_bridge

        return list(xla_bridge.backends().values()) if xla_bridge.backends_are_initialized() else []
    except Exception:  # another JAX version
        return []
