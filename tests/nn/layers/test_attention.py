"""GATv2 attention: softmax per receiver, zeros without incoming edges, padding-safe, graphs isolated,
permutation equivariant, jit = no jit, finite gradients; works on a masked kNN edge list."""

import jax
import jax.numpy as jnp
import jraph
import numpy as np
import pytest

from gnntrack.nn.layers.attention import GATv2, edge_softmax
from gnntrack.nn.layers.knn import knn_graph
from tests.nn.layers.layer_helpers import (assert_finite_gradients, assert_layer_contract,
                                           batch_of, padded)
from tests.nn.model_helpers import assert_close_across_shapes

LAYER = GATv2(features=5, heads=3)


def without_incoming(graph, node=0):
    """`graph` with every edge into `node` turned around (so `node` only sends)."""
    into = graph.receivers == node
    return graph._replace(senders=np.where(into, node, graph.senders),
                          receivers=np.where(into, graph.senders, graph.receivers))


@pytest.fixture(scope="module")
def setup():
    graphs = batch_of()
    graphs[0] = without_incoming(graphs[0])
    graph = jraph.batch_np(graphs)
    params = jax.jit(LAYER.init)(jax.random.key(0), graph.nodes, graph.senders, graph.receivers)["params"]

    def apply(g, edge_mask=None):
        return LAYER.apply({"params": params}, g.nodes, g.senders, g.receivers, edge_mask,
                           mutable=["intermediates"])
    return graphs, graph, apply, params


def test_weights_sum_to_one_per_receiver_and_no_incoming_gives_zeros(setup):
    _, graph, apply, _ = setup
    out, state = jax.jit(apply)(graph)
    alpha = state["intermediates"]["attention"][0]
    n = graph.nodes.shape[0]
    assert out.shape == (n, 15) and alpha.shape == (len(graph.senders), 3)
    totals = jax.ops.segment_sum(alpha, graph.receivers, num_segments=n)
    has_incoming = np.isin(np.arange(n), graph.receivers)
    assert not has_incoming[0]
    np.testing.assert_allclose(totals[has_incoming], 1.0, rtol=1e-6)
    np.testing.assert_array_equal(totals[~has_incoming], 0.0)
    np.testing.assert_array_equal(out[~has_incoming], 0.0)  # zeros, not NaN


def test_edge_softmax_masked_edges_take_no_share_and_stay_finite():
    scores = jnp.array([1.0, 2.0, 1e4, -3.0, 5.0])
    receivers = jnp.array([0, 0, 0, 2, 2])
    mask = jnp.array([True, True, False, False, False])
    alpha = edge_softmax(scores, receivers, 3, mask)
    np.testing.assert_allclose(alpha, [1 / (1 + np.e), np.e / (1 + np.e), 0, 0, 0], rtol=1e-6)
    grad = jax.grad(lambda s: jnp.sum(edge_softmax(s, receivers, 3, mask) ** 2))(scores)
    assert bool(jnp.all(jnp.isfinite(grad)))


def test_heads_averaged():
    graph = jraph.batch_np(batch_of())
    mean = GATv2(features=5, heads=3, concat=False)
    args = (graph.nodes, graph.senders, graph.receivers)
    params = mean.init(jax.random.key(0), *args)["params"]
    concat_out = GATv2(features=5, heads=3).apply({"params": params}, *args)
    np.testing.assert_allclose(mean.apply({"params": params}, *args),
                               concat_out.reshape(-1, 3, 5).mean(axis=1), rtol=1e-6, atol=1e-7)


def test_padding_safe_isolated_equivariant_and_jit_equal(setup):
    graphs, _, apply, _ = setup
    assert_layer_contract(jax.jit(lambda g: apply(g)[0]), graphs)


def test_padding_safe_with_the_edge_padding_mask(setup):
    _, graph, apply, _ = setup
    masked = jax.jit(lambda g: apply(g, jraph.get_edge_padding_mask(g))[0])
    n = graph.nodes.shape[0]
    assert_close_across_shapes(masked(padded(graph))[:n], apply(graph)[0])


def test_knn_edges_with_mask_equal_the_real_edges_alone(setup):
    _, graph, _, params = setup
    knn = knn_graph(graph.nodes, graph.n_node, 4)
    real = np.asarray(knn.mask)
    assert not real.all()  # the small graphs leave masked slots

    def run(senders, receivers, mask=None):
        return LAYER.apply({"params": params}, graph.nodes, senders, receivers, mask)
    assert_close_across_shapes(run(knn.senders, knn.receivers, knn.mask),
                               run(np.asarray(knn.senders)[real], np.asarray(knn.receivers)[real]))


def test_gradients_finite_on_a_padded_batch(setup):
    _, graph, _, params = setup
    pad = padded(graph)
    mask = jraph.get_edge_padding_mask(pad)

    def loss(p, x):
        return jnp.sum(jnp.tanh(LAYER.apply({"params": p}, x, pad.senders, pad.receivers, mask)))
    assert_finite_gradients(loss, params, jnp.asarray(pad.nodes))
