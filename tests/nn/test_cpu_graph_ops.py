"""The CPU message-passing kernels (gnntrack/nn/cpu_kernels/graph_ops.cc): counting-sort order,
segment gather-sums and row dots against NumPy; the weighted bidirectional message built on them
against its jnp formulation (values and gradients), deterministic, padding-safe; bad indices."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gnntrack.nn import cpu_kernels
from gnntrack.nn.fast.segment_classifier import (_fused_projected_bidirectional_weighted_sum,
                                                 _projected_bidirectional_weighted_sum,
                                                 weighted_bidirectional_sum)
from tests.nn.test_cpu_kernels import needs_kernel


def _edges(n_nodes, n_edges, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, n_nodes, n_edges, dtype=np.int32),
            rng.integers(0, n_nodes, n_edges, dtype=np.int32), rng)


@needs_kernel
@pytest.mark.parametrize("n_nodes,n_edges", [(7, 40), (50, 0), (1, 9), (300, 1000)])
def test_segment_order_is_a_stable_sort_with_offsets(n_nodes, n_edges):
    index, _, _ = _edges(n_nodes, n_edges)
    perm, ptr = jax.jit(cpu_kernels.segment_order, static_argnums=1)(index, n_nodes)
    np.testing.assert_array_equal(perm, np.argsort(index, kind="stable"))
    np.testing.assert_array_equal(ptr, np.r_[0, np.cumsum(np.bincount(index, minlength=n_nodes))])


@needs_kernel
@pytest.mark.parametrize("width", [8, 64, 5])  # 5: the plain-loop path for other widths
@pytest.mark.parametrize("weighted", [True, False])
def test_segment_gather_sum_against_numpy(width, weighted):
    n_nodes, n_table, n_edges = 37, 23, 400  # some nodes get no edge at all
    index, _, rng = _edges(n_nodes, n_edges)
    rows = rng.integers(0, n_table, n_edges, dtype=np.int32)
    table = rng.normal(size=(n_table, width)).astype(np.float32)
    coef = rng.normal(size=n_edges).astype(np.float32) if weighted else None
    perm, ptr = cpu_kernels.segment_order(index, n_nodes)
    out = cpu_kernels.segment_gather_sum(table, rows[np.asarray(perm)],
                                         None if coef is None else coef[np.asarray(perm)], ptr)
    expected = np.zeros((n_nodes, width))
    np.add.at(expected, index, table[rows].astype(np.float64) * (1.0 if coef is None else coef[:, None]))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


@needs_kernel
def test_segment_sum_matches_jax_and_handles_empty_edge_sets():
    index, _, rng = _edges(20, 500)
    data = rng.normal(size=(500, 16)).astype(np.float32)
    np.testing.assert_allclose(cpu_kernels.segment_sum(data, index, 20),
                               jax.ops.segment_sum(data, index, num_segments=20), rtol=1e-5, atol=1e-5)
    empty = cpu_kernels.segment_sum(np.zeros((0, 16), np.float32), np.zeros(0, np.int32), 4)
    np.testing.assert_array_equal(empty, np.zeros((4, 16)))


@needs_kernel
@pytest.mark.parametrize("width", [16, 64, 12])
def test_row_dots_against_numpy(width):
    ia, ib, rng = _edges(30, 5000)  # several work items of 4096 rows
    a = rng.normal(size=(30, width)).astype(np.float32)
    b = rng.normal(size=(30, width)).astype(np.float32)
    expected = np.einsum("ij,ij->i", a[ia].astype(np.float64), b[ib])
    np.testing.assert_allclose(cpu_kernels.row_dots(a, ia, b, ib), expected, rtol=1e-5, atol=1e-5)


def _message_inputs(n_nodes=60, n_edges=700, width=16, seed=1):
    senders, receivers, rng = _edges(n_nodes, n_edges, seed)
    p_in, p_out = (jnp.asarray(rng.normal(size=(n_nodes, width)), jnp.float32) for _ in range(2))
    w = jnp.asarray(rng.random(n_edges), jnp.float32)
    return p_in, p_out, w, jnp.asarray(senders), jnp.asarray(receivers)


def _reference_message(p_in, p_out, w, senders, receivers):
    n = p_in.shape[0]
    return (jax.ops.segment_sum(w[:, None] * p_in[senders], receivers, num_segments=n)
            + jax.ops.segment_sum(w[:, None] * p_out[receivers], senders, num_segments=n))


@needs_kernel
def test_weighted_bidirectional_sum_values_and_gradients():
    p_in, p_out, w, s, r = _message_inputs()
    fused = jax.jit(weighted_bidirectional_sum)
    np.testing.assert_allclose(fused(p_in, p_out, w, s, r), _reference_message(p_in, p_out, w, s, r),
                               rtol=1e-5, atol=1e-5)
    probe = jnp.asarray(np.random.default_rng(5).normal(size=p_in.shape), jnp.float32)

    def loss(message):
        return lambda p_in, p_out, w: jnp.sum(jnp.tanh(message(p_in, p_out, w, s, r)) * probe)

    grads = jax.jit(jax.grad(loss(weighted_bidirectional_sum), argnums=(0, 1, 2)))(p_in, p_out, w)
    expected = jax.grad(loss(_reference_message), argnums=(0, 1, 2))(p_in, p_out, w)
    for got, want in zip(grads, expected):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    again = jax.jit(jax.grad(loss(weighted_bidirectional_sum), argnums=(0, 1, 2)))(p_in, p_out, w)
    for first, second in zip(grads, again):  # fixed summation order: bitwise reproducible
        np.testing.assert_array_equal(first, second)


@needs_kernel
def test_fused_projected_message_matches_xla_form_with_padding_edges():
    """Padding edges (jraph puts them all on one padding node) change nothing for real nodes."""
    p_in, p_out, w, s, r = _message_inputs(n_nodes=40, n_edges=300, width=8)
    x = jnp.asarray(np.random.default_rng(2).normal(size=(41, 11)), jnp.float32)
    k_in, k_out = (jnp.asarray(np.random.default_rng(i).normal(size=(11, 8)), jnp.float32) for i in (3, 4))
    pad = 500  # many edges on node 40: one thread sums them all, in order
    s_pad = jnp.concatenate([s, jnp.full(pad, 40, jnp.int32)])
    r_pad = jnp.concatenate([r, jnp.full(pad, 40, jnp.int32)])
    w_pad = jnp.concatenate([w, jnp.ones(pad, jnp.float32)])
    got = _fused_projected_bidirectional_weighted_sum(x, w_pad, s_pad, r_pad, k_in, k_out)
    want = _projected_bidirectional_weighted_sum(x[:40], w, s, r, k_in, k_out)
    np.testing.assert_allclose(got[:40], want, rtol=1e-5, atol=1e-5)
    vmapped = jax.vmap(weighted_bidirectional_sum, in_axes=(0, 0, 0, None, None))(
        jnp.stack([p_in, 2 * p_in]), jnp.stack([p_out, p_out]), jnp.stack([w, w]), s, r)
    np.testing.assert_allclose(vmapped[1] - vmapped[0], _reference_message(p_in, 0 * p_out, w, s, r),
                               rtol=1e-4, atol=1e-4)


@needs_kernel
def test_graph_ops_reject_out_of_range_indices():
    index = np.array([0, 3, 1], np.int32)
    with pytest.raises(Exception, match="outside"):
        jax.block_until_ready(cpu_kernels.segment_order(index, 3))
    perm, ptr = cpu_kernels.segment_order(np.array([0, 1, 1], np.int32), 2)
    table = np.ones((2, 8), np.float32)
    with pytest.raises(Exception, match="out of range"):
        jax.block_until_ready(cpu_kernels.segment_gather_sum(table, np.array([0, 5, 1], np.int32), None, ptr))
    with pytest.raises(Exception, match="out of range"):
        jax.block_until_ready(cpu_kernels.row_dots(table, np.array([0, 2], np.int32), table,
                                                   np.array([1, 1], np.int32)))
