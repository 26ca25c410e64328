"""GravNet: padding-safe, graphs isolated, permutation equivariant, jit = no jit, finite gradients."""

import jax
import jax.numpy as jnp
import pytest

from gnntrack.nn.layers.gravnet import GravNet
from tests.nn.layers.layer_helpers import (assert_finite_gradients, assert_layer_contract,
                                           node_layer_case, padded_node_loss)

LAYER = GravNet(space_dims=2, propagate_dims=5, features=6, k=4, block_size=8)


@pytest.fixture(scope="module")
def case():
    return node_layer_case(LAYER)


def test_output_shape(case):
    assert case.fn(case.graph).shape == (case.graph.nodes.shape[0], 6)


def test_padding_safe_isolated_equivariant_and_jit_equal(case):
    assert_layer_contract(case.fn, case.graphs)


def test_gradients_finite_and_reach_the_learned_space(case):
    loss, x = padded_node_loss(LAYER, case.graph)
    assert_finite_gradients(loss, case.params, x)
    # the space projection learns only through the distance weights exp(-10 d^2)
    grads = jax.jit(jax.grad(loss))(case.params, x)
    assert float(jnp.max(jnp.abs(grads["space"]["kernel"]))) > 0
