"""Message-passing primitives for message functions: segment sums, gathers and gather-sums that
run forward *and* backward in the CPU kernels (`gnntrack.nn.cpu_kernels`) where they apply, and
as plain XLA (`jax.ops.segment_sum`, indexing) everywhere else.

    m = ops.gather_sum(x, senders, receivers, n, weights=w)   # Σ_{e: r_e = n} w_e · x[s_e]
    # == jax.ops.segment_sum(w[:, None] * x[senders], receivers, num_segments=n)

Why: XLA:CPU lowers a segment sum to a scatter, and the gradient of every gather `x[senders]` is
a scatter too; scatters into [N, H] rows are the slow part of a message-passing step on CPU.
Here the edges are grouped by node once (a counting sort, O(E)), and every sum becomes a gather
that one thread owns per output row, summed in edge order: deterministic, and within float
rounding of XLA's result (another summation order, so not bitwise equal to it). The gradient of
a gather-sum with respect to the table is a gather-sum over the transposed grouping (edges
grouped by their table row), and with respect to the weights a per-edge row dot.

When the kernels run (`kernels_apply`): the CPU backend, kernels built here
(`cpu_kernels.available()`: x86-64 with AVX2 + FMA, a C++ compiler, `GNNTRACK_CPU_KERNELS` not
"off"), float32 operands, and not switched off by `use_kernels(False)` (how a model's
`cpu_kernels="xla"` reaches the messages it calls). The choice is made while tracing, so each
compiled program contains one form or the other.

Index contract (as jraph padding guarantees: padding edges point at the padding node): every
segment id is in [0, num_segments) and every gathered row in [0, len(table)). The XLA form
silently drops out-of-range segment ids; the kernels reject them with an error.

Groupings: each op sorts the edges it needs by itself (a linear-time counting sort). A message
function that aggregates over the same edges several times (both directions, several
iterations) can sort once with `group` and pass the result (`grouping=` / `groupings=`): the
kernels skip the sort, and the XLA form ignores it. Works under jit, grad, vmap (the kernels run once per batch element)
and `jax.shard_map`.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import math

import jax
import jax.numpy as jnp

from gnntrack._compat import vary_like
from gnntrack.nn import cpu_kernels

_KERNELS_ON = contextvars.ContextVar("gnntrack_ops_kernels", default=True)


@contextlib.contextmanager
def use_kernels(enabled: bool):
    """Within this block (while tracing), the ops use the CPU kernels only if `enabled` and
    `kernels_apply` allows; `use_kernels(False)` forces the XLA form."""
    token = _KERNELS_ON.set(bool(enabled))
    try:
        yield
    finally:
        _KERNELS_ON.reset(token)


def with_kernels(fn, enabled: bool):
    """`fn` (e.g. a message function) run inside `use_kernels(enabled)`."""
    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        with use_kernels(enabled):
            return fn(*args, **kwargs)

    return wrapped


def kernels_apply(*arrays) -> bool:
    """Whether the ops run in the CPU kernels for these operands here (see the module docstring);
    builds the kernels on the first call that could use them."""
    return (_KERNELS_ON.get() and jax.default_backend() == "cpu"
            and all(jnp.result_type(a) == jnp.float32 for a in arrays if a is not None)
            and cpu_kernels.available())


@functools.partial(jax.tree_util.register_dataclass, data_fields=["segment_ids", "perm", "ptr"],
                   meta_fields=["num_segments"])
@dataclasses.dataclass(frozen=True)
class Grouping:
    """Edges grouped by one endpoint, from `group(segment_ids, num_segments)`.

    segment_ids int32 [E]; perm int32 [E] (edge ids ordered by segment, in edge order within a
    segment) and ptr int32 [num_segments + 1] (segment n's edges are perm[ptr[n]:ptr[n + 1]]),
    or None for both where the kernels do not apply.
    """

    segment_ids: jnp.ndarray
    perm: jnp.ndarray | None
    ptr: jnp.ndarray | None
    num_segments: int

    def counts(self) -> jnp.ndarray:
        """Edges per segment, int32 [num_segments]."""
        if self.ptr is not None:
            return self.ptr[1:] - self.ptr[:-1]
        return jnp.zeros(self.num_segments, jnp.int32).at[self.segment_ids].add(1)


def group(segment_ids: jnp.ndarray, num_segments: int, *, kernels: bool | None = None) -> Grouping:
    """Group edges by `segment_ids` int32 [E] (values in [0, num_segments)) for reuse by the ops.

    `kernels`: whether to sort (default: `kernels_apply()`); a Grouping made without the sort
    makes the ops that receive it use the XLA form."""
    segment_ids = jnp.asarray(segment_ids, jnp.int32)
    if kernels is None:
        kernels = kernels_apply()
    if not kernels:
        return Grouping(segment_ids, None, None, num_segments)
    perm, ptr = cpu_kernels.segment_order(segment_ids, num_segments)
    return Grouping(segment_ids, perm, ptr, num_segments)


def _grouping(given: Grouping | None, segment_ids, num_segments: int) -> Grouping:
    if given is None:
        return group(segment_ids, num_segments, kernels=True)
    if given.num_segments != num_segments:
        raise ValueError(f"grouping has {given.num_segments} segments, the op {num_segments}")
    return given


def _as_rows(a: jnp.ndarray) -> jnp.ndarray:
    """[R, ...] -> [R, D] (the kernels' 2-D layout; D = 1 for a vector)."""
    return a.reshape(a.shape[0], math.prod(a.shape[1:]))


def _vary_together(*arrays):
    """Inside shard_map: cast the operands to one device-varying type before a custom-VJP call,
    so each cotangent has its primal's type (autodiff of the cast then sums the gradient of a
    replicated operand over devices, as for plain jnp code)."""
    return vary_like(arrays, *arrays)


# ---------------------------------------------------------------------------------------------
# Public ops.


def segment_sum(data: jnp.ndarray, segment_ids: jnp.ndarray, num_segments: int, *,
                grouping: Grouping | None = None) -> jnp.ndarray:
    """jax.ops.segment_sum(data, segment_ids, num_segments): out [N, ...] = Σ_{e: id_e = n} data[e].

    data float [E, ...]; segment_ids int32 [E] in [0, N); grouping: `group(segment_ids, N)`
    (optional). Backward: a gather of the cotangent rows."""
    data, segment_ids = jnp.asarray(data), jnp.asarray(segment_ids)
    if not kernels_apply(data) or (grouping is not None and grouping.perm is None):
        return jax.ops.segment_sum(data, segment_ids, num_segments=num_segments)
    g = _grouping(grouping, segment_ids, num_segments)
    (rows,) = _vary_together(_as_rows(data))
    return _segment_sum_kernel(rows, g.segment_ids, g.perm, g.ptr).reshape(
        (num_segments,) + data.shape[1:])


def gather(table: jnp.ndarray, index: jnp.ndarray, *, grouping: Grouping | None = None) -> jnp.ndarray:
    """table[index] [E, ...] for table float [T, ...] and index int32 [E] in [0, T).

    The forward pass is XLA's gather; the backward pass (a scatter-add of the cotangent rows into
    [T, ...], slow on CPU) is a kernel segment sum. grouping: `group(index, T)` (optional)."""
    table, index = jnp.asarray(table), jnp.asarray(index)
    if not kernels_apply(table) or (grouping is not None and grouping.perm is None):
        return table.at[index].get(mode="promise_in_bounds")
    g = _grouping(grouping, index, table.shape[0])
    (rows,) = _vary_together(_as_rows(table))
    return _gather_kernel(rows, g.segment_ids, g.perm, g.ptr).reshape(
        index.shape[:1] + table.shape[1:])


def gather_sum(table: jnp.ndarray, index_rows: jnp.ndarray, segment_ids: jnp.ndarray,
               num_segments: int, weights: jnp.ndarray | None = None, *,
               groupings: tuple[Grouping | None, Grouping | None] | None = None) -> jnp.ndarray:
    """out [N, ...] = Σ_{e: segment_ids[e] = n} weights[e] · table[index_rows[e]], i.e.
    jax.ops.segment_sum(weights[:, None] * table[index_rows], segment_ids, N), without the
    [E, ...] intermediate.

    table float [T, ...]; index_rows int32 [E] in [0, T) (e.g. senders); segment_ids int32 [E] in
    [0, N) (e.g. receivers); weights float [E] or None (all ones); groupings: optional
    (`group(segment_ids, N)`, `group(index_rows, T)`) -- the first serves the forward pass, the
    second the table's gradient. Backward: d table = the transposed gather-sum, d weights[e] =
    g[segment_ids[e]] · table[index_rows[e]]."""
    table, index_rows, segment_ids = map(jnp.asarray, (table, index_rows, segment_ids))
    weights = None if weights is None else jnp.asarray(weights)
    if weights is not None and weights.shape != index_rows.shape[:1]:
        raise ValueError(f"weights must be [E] = {index_rows.shape[:1]}, got {weights.shape}")
    by_segment, by_row = groupings if groupings is not None else (None, None)
    if not kernels_apply(table, weights) or any(g is not None and g.perm is None
                                                for g in (by_segment, by_row)):
        rows = table.at[index_rows].get(mode="promise_in_bounds")
        if weights is not None:
            rows = weights.reshape(weights.shape + (1,) * (rows.ndim - 1)) * rows
        return jax.ops.segment_sum(rows, segment_ids, num_segments=num_segments)
    by_segment = _grouping(by_segment, segment_ids, num_segments)
    by_row = _grouping(by_row, index_rows, table.shape[0])
    if weights is None:
        (rows,) = _vary_together(_as_rows(table))
        out = _gather_sum_kernel(rows, by_segment, by_row)
    else:
        rows, weights = _vary_together(_as_rows(table), weights)
        out = _weighted_gather_sum_kernel(rows, weights, by_segment, by_row)
    return out.reshape((num_segments,) + table.shape[1:])


def segment_mean(data: jnp.ndarray, segment_ids: jnp.ndarray, num_segments: int, *,
                 grouping: Grouping | None = None) -> jnp.ndarray:
    """Mean of data [E, ...] per segment -> [N, ...]; 0 for a segment without edges."""
    g = grouping if grouping is not None else group(segment_ids, num_segments,
                                                    kernels=kernels_apply(data))
    total = segment_sum(data, segment_ids, num_segments, grouping=g)
    return total / _per_row(jnp.maximum(g.counts(), 1).astype(total.dtype), total)


def gather_mean(table: jnp.ndarray, index_rows: jnp.ndarray, segment_ids: jnp.ndarray,
                num_segments: int, weights: jnp.ndarray | None = None, *, eps: float = 1e-6,
                groupings: tuple[Grouping | None, Grouping | None] | None = None) -> jnp.ndarray:
    """Mean of table[index_rows] per segment -> [N, ...] (0 for a segment without edges); with
    weights [E], the weighted mean Σ w·table[row] / (Σ w + eps). Arguments as `gather_sum`."""
    by_segment, by_row = groupings if groupings is not None else (None, None)
    if by_segment is None:
        by_segment = group(segment_ids, num_segments, kernels=kernels_apply(table, weights))
    total = gather_sum(table, index_rows, segment_ids, num_segments, weights,
                       groupings=(by_segment, by_row))
    if weights is None:
        norm = jnp.maximum(by_segment.counts(), 1).astype(total.dtype)
    else:
        norm = segment_sum(weights, segment_ids, num_segments, grouping=by_segment) + eps
    return total / _per_row(norm, total)


def _per_row(v: jnp.ndarray, like: jnp.ndarray) -> jnp.ndarray:
    """v [N] shaped to broadcast over like [N, ...]."""
    return v.reshape(v.shape + (1,) * (like.ndim - 1))


# ---------------------------------------------------------------------------------------------
# Kernel forms (custom VJPs). Operands are float32 rows [R, D] and int32 groupings; integer
# operands get no cotangent (None).


@jax.custom_vjp
def _segment_sum_kernel(data, segment_ids, perm, ptr):
    return cpu_kernels.segment_gather_sum(data, perm, None, ptr)


def _segment_sum_fwd(data, segment_ids, perm, ptr):
    return _segment_sum_kernel(data, segment_ids, perm, ptr), segment_ids


def _segment_sum_bwd(segment_ids, g):
    return g.at[segment_ids].get(mode="promise_in_bounds"), None, None, None


_segment_sum_kernel.defvjp(_segment_sum_fwd, _segment_sum_bwd)


@jax.custom_vjp
def _gather_kernel(table, index, perm, ptr):
    return table.at[index].get(mode="promise_in_bounds")


def _gather_fwd(table, index, perm, ptr):
    return _gather_kernel(table, index, perm, ptr), (perm, ptr)


def _gather_bwd(residuals, g):
    perm, ptr = residuals
    return cpu_kernels.segment_gather_sum(g, perm, None, ptr), None, None, None


_gather_kernel.defvjp(_gather_fwd, _gather_bwd)


@jax.custom_vjp
def _gather_sum_kernel(table, by_segment, by_row):
    return _gather_sum_fwd(table, by_segment, by_row)[0]


def _gather_sum_fwd(table, by_segment, by_row):
    rows = by_row.segment_ids[by_segment.perm]  # table row of each edge, in segment order
    return cpu_kernels.segment_gather_sum(table, rows, None, by_segment.ptr), (by_segment, by_row)


def _gather_sum_bwd(residuals, g):
    by_segment, by_row = residuals
    segments = by_segment.segment_ids[by_row.perm]  # output row of each edge, in table-row order
    d_table = cpu_kernels.segment_gather_sum(g, segments, None, by_row.ptr)
    return d_table, None, None


_gather_sum_kernel.defvjp(_gather_sum_fwd, _gather_sum_bwd)


@jax.custom_vjp
def _weighted_gather_sum_kernel(table, weights, by_segment, by_row):
    return _weighted_gather_sum_fwd(table, weights, by_segment, by_row)[0]


def _weighted_gather_sum_fwd(table, weights, by_segment, by_row):
    perm = by_segment.perm
    out = cpu_kernels.segment_gather_sum(table, by_row.segment_ids[perm], weights[perm],
                                         by_segment.ptr)
    return out, (table, weights, by_segment, by_row)


def _weighted_gather_sum_bwd(residuals, g):
    table, weights, by_segment, by_row = residuals
    perm = by_row.perm
    d_table = cpu_kernels.segment_gather_sum(g, by_segment.segment_ids[perm], weights[perm],
                                             by_row.ptr)
    d_weights = cpu_kernels.row_dots(g, by_segment.segment_ids, table, by_row.segment_ids)
    return d_table, d_weights, None, None


_weighted_gather_sum_kernel.defvjp(_weighted_gather_sum_fwd, _weighted_gather_sum_bwd)


__all__ = ["Grouping", "group", "segment_sum", "segment_mean", "gather", "gather_sum",
           "gather_mean", "kernels_apply", "use_kernels", "with_kernels"]
