"""GNN-LSH binned message passing: padding-safe, events isolated, permutation equivariant, jit =
no jit; one bin is the dense quadratic computation; masked elements are nobody's neighbour;
bins hold one event each and every real element exactly once; bf16 compute keeps fp32 params."""

import functools

import jax
import jax.numpy as jnp
import jraph
import numpy as np
import pytest

from gnntrack.nn.layers.lsh import LSHMessagePassing, lsh_bins
from tests.nn.layers.layer_helpers import (assert_finite_gradients, assert_layer_contract,
                                           node_layer_case, padded_node_loss)
from tests.nn.model_helpers import assert_close_across_shapes

# bin_size 4 with graphs of 9, 3, 1 and 12 nodes: several bins per graph, partly filled ones
LAYER = LSHMessagePassing(features=6, distance_dim=3, bin_size=4, n_buckets=4, n_convs=2)


@pytest.fixture(scope="module")
def case():
    return node_layer_case(LAYER)


def test_output_shape(case):
    assert case.fn(case.graph).shape == (case.graph.nodes.shape[0], 6)


def test_padding_safe_isolated_equivariant_and_jit_equal(case):
    assert_layer_contract(case.fn, case.graphs)


def test_gradients_finite_and_reach_the_distance_space(case):
    loss, x = padded_node_loss(LAYER, case.graph)
    assert_finite_gradients(loss, case.params, x)


def quadratic_reference(params, x, n_node, n_convs=2):
    """The layer written out over all pairs of each graph (no bins, no hashing), float32."""
    z = x @ params["distance"]["kernel"] + params["distance"]["bias"]
    graph = np.repeat(np.arange(len(n_node)), n_node)
    same = graph[:, None] == graph[None, :]
    adj = jnp.where(same, jnp.exp(-jnp.sum((z[:, None] - z[None, :]) ** 2, -1)), 0.0)
    norm = 1.0 / jnp.sqrt(adj.sum(-1))
    a = norm[:, None] * adj * norm[None, :]
    h = x
    for i in range(n_convs):
        p = params[f"conv_{i}"]
        gate = jax.nn.sigmoid(h @ p["gate"]["kernel"] + p["gate"]["bias"])
        h = jax.nn.gelu(gate * (a @ (h @ p["hom"]["kernel"])) + (1 - gate) * (h @ p["het"]["kernel"] + p["het"]["bias"]))
    return h


@pytest.mark.parametrize("dense", [False, True])
def test_one_bin_is_the_dense_quadratic_computation(case, dense):
    # bin_size >= every graph: each graph in one bin (LSH sorted), or dense=True (one bin, own
    # order). Other summation orders than the reference: equal within float32 rounding.
    one_bin = LAYER.clone(bin_size=64, dense=dense)
    got = one_bin.apply({"params": case.params}, case.graph.nodes, case.graph.n_node)
    want = quadratic_reference(case.params, jnp.asarray(case.graph.nodes), case.graph.n_node)
    assert_close_across_shapes(got, want)


def test_masked_elements_are_nobodys_neighbour_and_output_zero(case):
    g = case.graph
    mask = np.ones(len(g.nodes), bool)
    mask[[2, 5, 20]] = False
    fn = jax.jit(lambda x: LAYER.apply({"params": case.params}, x, g.n_node, mask))
    base = np.asarray(fn(g.nodes))
    moved = g.nodes.copy()
    moved[~mask] = 1e3 * np.random.default_rng(1).normal(size=moved[~mask].shape)
    # Same program and inputs except the masked rows, which have no slot: every real element's
    # bin holds the same elements in the same order, so its output is bitwise the same.
    np.testing.assert_array_equal(np.asarray(fn(moved)), base)
    assert not base[~mask].any()


def test_given_hash_points_decide_the_bins_and_the_learned_space_the_kernel(case):
    g = case.graph
    n = len(g.nodes)
    group = np.arange(n) % 2
    points = np.where(group[:, None] == 0, [1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]).astype(np.float32)
    points += 0.01 * np.random.default_rng(0).normal(size=points.shape).astype(np.float32)
    layer = LAYER.clone(bin_size=4, n_buckets=8)
    fn = jax.jit(lambda x: layer.apply({"params": case.params}, x, g.n_node, None, points))
    bins = lsh_bins(jnp.asarray(points), g.n_node, 4, 8)
    slot_element = np.asarray(bins.slot_element)
    bin_of = np.empty(n, int)
    for b, row in enumerate(slot_element):
        bin_of[row[row < n]] = b
    moved = g.nodes.copy()
    moved[group == 1] += 3.0  # new features, same hash points: the same bins
    untouched = np.array([not (group[bin_of == bin_of[i]] == 1).any() for i in range(n)])
    assert untouched.any() and not untouched.all()
    # same program; a bin without moved elements holds the same inputs -> bitwise equal outputs
    before, after = np.asarray(fn(g.nodes)), np.asarray(fn(moved))
    np.testing.assert_array_equal(after[untouched], before[untouched])
    assert not np.array_equal(after[group == 1], before[group == 1])


def test_bins_hold_one_graph_each_and_every_real_element_once():
    rng = np.random.default_rng(0)
    n_node = np.array([50, 7, 0, 33], np.int32)
    z = rng.normal(size=(int(n_node.sum()) + 6, 4)).astype(np.float32)  # 6 elements beyond n_node
    bins = jax.jit(functools.partial(lsh_bins, bin_size=8, n_buckets=4))(z, n_node)
    slot_element, slot_graph = np.asarray(bins.slot_element), np.asarray(bins.slot_graph)
    n = len(z)
    assert slot_element.shape == (-(-n // 8) + len(n_node) - 1, 8)  # O(N / bin_size) bins
    for row, graphs in zip(slot_element, slot_graph):
        assert len(set(graphs[row < n])) <= 1 and (graphs[row == n] == -1).all()
    real = np.sort(slot_element[slot_element < n])
    np.testing.assert_array_equal(real, np.arange(n_node.sum()))
    flat = np.asarray(bins.element_slot)
    np.testing.assert_array_equal(slot_element.reshape(-1)[flat[:n_node.sum()]], np.arange(n_node.sum()))
    assert (flat[n_node.sum():] == slot_element.size).all()


def test_nearby_points_share_bins_far_more_often_than_chance():
    # clusters of 8 points around random centres: LSH bins of 16 keep most pairs together
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(64, 8)) * 3.0
    z = (np.repeat(centres, 8, 0) + 0.05 * rng.normal(size=(512, 8))).astype(np.float32)
    bins = lsh_bins(jnp.asarray(z), np.array([512], np.int32), bin_size=16, n_buckets=8)
    bin_of = np.empty(512, int)
    bin_of[np.asarray(bins.slot_element).reshape(-1)] = np.repeat(np.arange(32), 16)
    cluster = np.repeat(np.arange(64), 8)
    pairs = (cluster[:, None] == cluster[None, :]) & ~np.eye(512, dtype=bool)
    together = np.mean((bin_of[:, None] == bin_of[None, :])[pairs])
    assert together > 0.8  # chance: 15 / 511


def test_bf16_compute_keeps_float32_parameters(case):
    layer = LAYER.clone(dtype=jnp.bfloat16)
    params = layer.init(jax.random.key(0), case.graph.nodes, case.graph.n_node)["params"]
    assert all(p.dtype == jnp.float32 for p in jax.tree_util.tree_leaves(params))
    out = layer.apply({"params": case.params}, case.graph.nodes, case.graph.n_node)
    assert out.dtype == jnp.bfloat16
    want = np.asarray(LAYER.apply({"params": case.params}, case.graph.nodes, case.graph.n_node))
    np.testing.assert_allclose(np.asarray(out, np.float32), want, atol=0.05 * np.abs(want).max())
