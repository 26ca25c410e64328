"""gnntrack.nn.ops against jax.ops.segment_sum: values and gradients, padding, empty edge sets,
jit / vmap / shard_map, the XLA fallback chosen by the one switch, the kernels really in the
compiled program, and the built-in messages computed with them.

Tolerances: the kernels sum each output row in edge order, XLA's scatter in its own order, so
results agree to float32 rounding, not bitwise (rtol 1e-5 on values of O(1) sums of a few tens
of terms; 1e-4 on gradients, which go through one more sum). Only the XLA fallback, which *is*
the reference program, is compared bitwise."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, PartitionSpec as P

from gnntrack.nn import cpu_kernels, ops
from gnntrack.nn.registry import get_message
from tests.nn.test_cpu_kernels import needs_kernel

N, T, E = 37, 23, 400  # some segments and table rows get no edge at all


def _inputs(width=16, n_edges=E, seed=0, trailing=()):
    rng = np.random.default_rng(seed)
    table = jnp.asarray(rng.normal(size=(T, width) + trailing), jnp.float32)
    rows = jnp.asarray(rng.integers(0, T, n_edges), jnp.int32)
    segments = jnp.asarray(rng.integers(0, N, n_edges), jnp.int32)
    weights = jnp.asarray(rng.random(n_edges), jnp.float32)
    return table, rows, segments, weights


def _xla_gather_sum(table, rows, segments, weights=None):
    picked = table[rows]
    if weights is not None:
        picked = weights.reshape(weights.shape + (1,) * (picked.ndim - 1)) * picked
    return jax.ops.segment_sum(picked, segments, num_segments=N)


def _probe_loss(fn, shape, seed=5):
    """A scalar of fn(...)'s output whose gradient reaches every output element unequally."""
    probe = jnp.asarray(np.random.default_rng(seed).normal(size=shape), jnp.float32)
    return lambda *args: jnp.sum(jnp.tanh(fn(*args)) * probe)


def _assert_same_values_and_grads(ours, reference, args, out_shape):
    np.testing.assert_allclose(jax.jit(ours)(*args), reference(*args), rtol=1e-5, atol=1e-5)
    argnums = tuple(range(len(args)))
    got = jax.jit(jax.grad(_probe_loss(ours, out_shape), argnums))(*args)
    want = jax.grad(_probe_loss(reference, out_shape), argnums)(*args)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("width,trailing", [(16, ()), (64, ()), (5, ()), (3, (2,))])
@pytest.mark.parametrize("weighted", [True, False])
def test_gather_sum_matches_segment_sum(width, trailing, weighted):
    table, rows, segments, weights = _inputs(width, trailing=trailing)
    if weighted:
        _assert_same_values_and_grads(
            lambda t, w: ops.gather_sum(t, rows, segments, N, w),
            lambda t, w: _xla_gather_sum(t, rows, segments, w), (table, weights), (N, width) + trailing)
    else:
        _assert_same_values_and_grads(lambda t: ops.gather_sum(t, rows, segments, N),
                                      lambda t: _xla_gather_sum(t, rows, segments), (table,),
                                      (N, width) + trailing)


def test_segment_sum_gather_and_means_match_xla():
    table, rows, segments, weights = _inputs(8)
    data = table[rows] * 0.5
    _assert_same_values_and_grads(lambda d: ops.segment_sum(d, segments, N),
                                  lambda d: jax.ops.segment_sum(d, segments, num_segments=N),
                                  (data,), (N, 8))
    _assert_same_values_and_grads(lambda t: ops.gather(t, rows), lambda t: t[rows], (table,), (E, 8))
    counts = jax.ops.segment_sum(jnp.ones(E), segments, num_segments=N)
    _assert_same_values_and_grads(
        lambda d: ops.segment_mean(d, segments, N),
        lambda d: jax.ops.segment_sum(d, segments, num_segments=N) / jnp.maximum(counts, 1)[:, None],
        (data,), (N, 8))
    _assert_same_values_and_grads(
        lambda t, w: ops.gather_mean(t, rows, segments, N, w, eps=1e-6),
        lambda t, w: _xla_gather_sum(t, rows, segments, w)
        / (jax.ops.segment_sum(w, segments, num_segments=N) + 1e-6)[:, None],
        (table, weights), (N, 8))
    _assert_same_values_and_grads(
        lambda t: ops.gather_mean(t, rows, segments, N),
        lambda t: _xla_gather_sum(t, rows, segments) / jnp.maximum(counts, 1)[:, None],
        (table,), (N, 8))


def test_precomputed_groupings_give_the_same_results():
    table, rows, segments, weights = _inputs(16)
    groupings = (ops.group(segments, N), ops.group(rows, T))
    _assert_same_values_and_grads(
        lambda t, w: ops.gather_sum(t, rows, segments, N, w, groupings=groupings),
        lambda t, w: _xla_gather_sum(t, rows, segments, w), (table, weights), (N, 16))
    counts = np.bincount(np.asarray(segments), minlength=N)
    np.testing.assert_array_equal(groupings[0].counts(), counts)
    with ops.use_kernels(False):
        np.testing.assert_array_equal(ops.group(segments, N).counts(), counts)
    with pytest.raises(ValueError, match="segments"):
        ops.gather_sum(table, rows, segments, N + 1, groupings=groupings)


def test_padding_edges_on_the_padding_node_change_no_real_row():
    """jraph padding: extra edges all connect the padding node (last row) to itself."""
    table, rows, segments, weights = _inputs(16)
    pad = 300  # many edges on one node: one thread sums them all
    padded_table = jnp.concatenate([table, jnp.ones((1, 16), jnp.float32)])
    pad_ids = jnp.full(pad, N, jnp.int32)
    got = ops.gather_sum(padded_table, jnp.concatenate([rows, jnp.full(pad, T, jnp.int32)]),
                         jnp.concatenate([segments, pad_ids]), N + 1,
                         jnp.concatenate([weights, jnp.ones(pad, jnp.float32)]))
    np.testing.assert_allclose(got[:N], _xla_gather_sum(table, rows, segments, weights),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got[N], np.full(16, pad), rtol=1e-6)


def test_empty_edge_sets_give_zeros_and_zero_gradients():
    table, rows, segments, weights = _inputs(8, n_edges=0)
    out = jax.jit(lambda t, w: ops.gather_sum(t, rows, segments, N, w))(table, weights)
    np.testing.assert_array_equal(out, np.zeros((N, 8)))
    grad = jax.jit(jax.grad(lambda t: jnp.sum(ops.gather_mean(t, rows, segments, N) ** 2)))(table)
    np.testing.assert_array_equal(grad, np.zeros_like(table))
    np.testing.assert_array_equal(ops.segment_sum(jnp.zeros((0, 3)), segments, N), np.zeros((N, 3)))


def _lowered(fn, *args) -> str:
    return jax.jit(jax.grad(_probe_loss(fn, (N, 16)), argnums=(0, 1))).lower(*args).as_text()


@needs_kernel
def test_kernels_are_in_the_compiled_program_forward_and_backward():
    table, rows, segments, weights = _inputs(16)
    text = _lowered(lambda t, w: ops.gather_sum(t, rows, segments, N, w), table, weights)
    assert cpu_kernels.SEGMENT_ORDER_TARGET in text
    assert text.count(cpu_kernels.SEGMENT_GATHER_SUM_TARGET) == 2  # forward, d table
    assert cpu_kernels.ROW_DOTS_TARGET in text                      # d weights
    assert "scatter" not in text  # no XLA scatter left, forward or backward
    text = _lowered(lambda t, w: ops.segment_sum(ops.gather(t, rows) * w[:, None], segments, N),
                    table, weights)
    assert text.count(cpu_kernels.SEGMENT_GATHER_SUM_TARGET) == 2 and "scatter" not in text


def test_the_switch_forces_the_xla_form(monkeypatch):
    """use_kernels(False) (a model's cpu_kernels="xla"), kernels unavailable (no AVX2/FMA,
    GNNTRACK_CPU_KERNELS=off: `cpu_kernels.available`) or another dtype: the program is the
    plain XLA one: bitwise the result of the same lines written with jax.ops.segment_sum, as it
    is the same gather, product and scatter-add on the same operands."""
    table, rows, segments, weights = _inputs(16)

    def fn(t, w):
        return ops.gather_sum(t, rows, segments, N, w)

    reference = jax.jit(lambda t, w: _xla_gather_sum(t, rows, segments, w))(table, weights)
    with ops.use_kernels(False):
        assert not ops.kernels_apply(table)
        text = _lowered(fn, table, weights)
        np.testing.assert_array_equal(jax.jit(fn)(table, weights), reference)
    assert "gnntrack_" not in text and "scatter" in text
    assert "gnntrack_" not in jax.jit(ops.with_kernels(fn, False)).lower(table, weights).as_text()
    monkeypatch.setattr(cpu_kernels, "available", lambda: False)
    assert "gnntrack_" not in _lowered(fn, table, weights)
    monkeypatch.undo()
    half = jax.jit(fn).lower(table.astype(jnp.bfloat16), weights.astype(jnp.bfloat16)).as_text()
    assert "gnntrack_" not in half


@needs_kernel
def test_vmap_runs_the_kernels_per_batch_element():
    table, rows, segments, weights = _inputs(16)
    tables, ws = jnp.stack([table, 2 * table]), jnp.stack([weights, weights[::-1]])
    got = jax.jit(jax.vmap(lambda t, w: ops.gather_sum(t, rows, segments, N, w)))(tables, ws)
    for i in range(2):
        np.testing.assert_allclose(got[i], _xla_gather_sum(tables[i], rows, segments, ws[i]),
                                   rtol=1e-5, atol=1e-5)


def test_shard_map_replicated_table_gets_summed_gradients():
    """A replicated table gathered by per-device edges: its gradient is the sum over devices,
    as for the same code written with jax.ops.segment_sum."""
    devices = np.array(jax.devices()[:4])
    table, _, _, _ = _inputs(16)
    stacked = [jnp.stack(a) for a in zip(*[_inputs(16, seed=10 + i)[1:] for i in range(len(devices))])]

    def per_device(message):
        def loss(t, rows, segments, weights):
            rows, segments, weights = rows[0], segments[0], weights[0]
            return jax.lax.psum(jnp.sum(jnp.tanh(message(t, rows, segments, weights))), "d")

        return jax.jit(jax.shard_map(jax.grad(loss), mesh=Mesh(devices, ("d",)),
                                     in_specs=(P(), P("d"), P("d"), P("d")), out_specs=P()))

    got = per_device(lambda t, r, s, w: ops.gather_sum(t, r, s, N, w))(table, *stacked)
    want = per_device(_xla_gather_sum)(table, *stacked)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def _old_weighted(x, e, src, dst):
    return jax.ops.segment_sum(e * x[src], dst, num_segments=x.shape[0])


# The built-in messages as they were written with jax.ops.segment_sum.
OLD_MESSAGES = {
    "bidirectional_weighted_sum": lambda x, e, s, r: jnp.concatenate(
        [_old_weighted(x, e, s, r), _old_weighted(x, e, r, s)], -1),
    "weighted_sum_in": lambda x, e, s, r: _old_weighted(x, e, s, r),
    "bidirectional_weighted_mean": lambda x, e, s, r: jnp.concatenate(
        [_old_weighted(x, e, s, r) / (jax.ops.segment_sum(e, r, num_segments=x.shape[0]) + 1e-6),
         _old_weighted(x, e, r, s) / (jax.ops.segment_sum(e, s, num_segments=x.shape[0]) + 1e-6)], -1),
    "sum_incoming": lambda x, e, s, r: jax.ops.segment_sum(e, r, num_segments=x.shape[0]),
    "sum_bidirectional": lambda x, e, s, r: jnp.concatenate(
        [jax.ops.segment_sum(e, r, num_segments=x.shape[0]),
         jax.ops.segment_sum(e, s, num_segments=x.shape[0])], -1),
}


@pytest.mark.parametrize("name", sorted(OLD_MESSAGES))
@pytest.mark.parametrize("edge_width", [1, 8])  # per-edge weights; per-edge vectors
def test_builtin_messages_keep_their_results(name, edge_width):
    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.normal(size=(N, 8)), jnp.float32)
    e = jnp.asarray(rng.random((E, edge_width)), jnp.float32)
    s, r = (jnp.asarray(rng.integers(0, N, E), jnp.int32) for _ in range(2))
    new, old = get_message(name), OLD_MESSAGES[name]
    width = old(x, e, s, r).shape[-1]
    _assert_same_values_and_grads(lambda x, e: new(x, e, s, r), lambda x, e: old(x, e, s, r),
                                  (x, e), (N, width))


@needs_kernel
def test_a_models_cpu_kernels_choice_reaches_its_message():
    """model.cpu_kernels="xla" (and the reference impl) keep the message in XLA; "fused" runs it
    in the kernels: one switch for the networks and the ops."""
    from gnntrack.bench import random_graph
    from gnntrack.nn.models import FastSegmentClassifier, SegmentClassifier

    graph, _ = random_graph(30, 90, seed=1)
    programs = {}
    for impl, choice in (("reference", "auto"), ("fast", "xla"), ("fast", "fused")):
        common = dict(hidden=16, n_iters=1, message="bidirectional_weighted_mean")
        model = (SegmentClassifier(**common) if impl == "reference"
                 else FastSegmentClassifier(cpu_kernels=choice, **common))
        params = model.init(jax.random.key(0), graph)["params"]
        programs[impl, choice] = jax.jit(model.apply).lower({"params": params}, graph).as_text()
    assert cpu_kernels.SEGMENT_GATHER_SUM_TARGET not in programs["reference", "auto"]
    assert cpu_kernels.SEGMENT_GATHER_SUM_TARGET not in programs["fast", "xla"]
    assert cpu_kernels.SEGMENT_GATHER_SUM_TARGET in programs["fast", "fused"]
