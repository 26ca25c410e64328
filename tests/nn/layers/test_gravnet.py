"""GravNet: padding-safe, graphs isolated, permutation equivariant, jit = no jit, finite gradients."""

import jax
import jax.numpy as jnp
import jraph
import pytest

from gnntrack.nn.layers.gravnet import GravNet
from tests.nn.layers.layer_helpers import (assert_finite_gradients, assert_graphs_isolated,
                                           assert_jit_matches_eager, assert_padding_safe,
                                           assert_permutation_equivariant, batch_of, padded)

LAYER = GravNet(space_dims=2, propagate_dims=5, features=6, k=4, block_size=8)


@pytest.fixture(scope="module")
def setup():
    graphs = batch_of()
    graph = jraph.batch_np(graphs)
    params = jax.jit(LAYER.init)(jax.random.key(0), graph.nodes, graph.n_node)["params"]
    # jitted: the checks call it at several shapes (test_jit_matches_no_jit unwraps it)
    return graphs, graph, jax.jit(lambda g: LAYER.apply({"params": params}, g.nodes, g.n_node)), params


def test_output_shape(setup):
    _, graph, fn, _ = setup
    assert fn(graph).shape == (graph.nodes.shape[0], 6)


def test_padding_safe(setup):
    assert_padding_safe(setup[2], setup[1])


def test_graphs_never_see_each_other(setup):
    assert_graphs_isolated(setup[2], setup[0])


def test_permutation_equivariant(setup):
    assert_permutation_equivariant(setup[2], setup[1])


def test_jit_matches_no_jit(setup):
    assert_jit_matches_eager(setup[2].__wrapped__, setup[1])


def test_gradients_finite_and_reach_the_learned_space(setup):
    _, graph, _, params = setup
    pad = padded(graph)

    def loss(p, x):
        return jnp.sum(jnp.tanh(LAYER.apply({"params": p}, x, pad.n_node)))
    assert_finite_gradients(loss, params, jnp.asarray(pad.nodes))
    # the space projection learns only through the distance weights exp(-10 d^2)
    grads = jax.jit(jax.grad(loss))(params, jnp.asarray(pad.nodes))
    assert float(jnp.max(jnp.abs(grads["space"]["kernel"]))) > 0
