"""EdgeConv: padding-safe, graphs isolated, permutation equivariant, jit = no jit, finite gradients."""

import jax
import numpy as np
import pytest

from gnntrack.nn.layers.edgeconv import EdgeConv
from tests.nn.layers.layer_helpers import (assert_finite_gradients, assert_layer_contract,
                                           node_layer_case, padded_node_loss)

LAYER = EdgeConv(features=(8, 8), k=4, block_size=8)


@pytest.fixture(scope="module")
def case():
    return node_layer_case(LAYER)


def test_output_shape(case):
    assert case.fn(case.graph).shape == (case.graph.nodes.shape[0], 8)


def test_padding_safe_isolated_equivariant_and_jit_equal(case):
    assert_layer_contract(case.fn, case.graphs)


def test_lone_node_gets_its_shortcut_only(case):
    lone = 9 + 3  # the graph of one node (batch_of's sizes 9, 3, 1, 12): no neighbours
    shortcut = case.params["shortcut"]
    want = jax.nn.relu(case.graph.nodes[lone] @ shortcut["kernel"] + shortcut["bias"])
    np.testing.assert_allclose(case.fn(case.graph)[lone], want, rtol=1e-6, atol=1e-6)


def test_coords_choose_the_neighbours(case):
    graph = case.graph
    coords = np.random.default_rng(5).normal(size=(graph.nodes.shape[0], 2)).astype(np.float32)
    apply = jax.jit(lambda c: LAYER.apply({"params": case.params}, graph.nodes, graph.n_node, coords=c))
    assert not np.allclose(apply(coords), apply(graph.nodes))


def test_gradients_finite_on_a_padded_batch(case):
    loss, x = padded_node_loss(LAYER, case.graph)
    assert_finite_gradients(loss, case.params, x)
