"""Kernel attention (FAVOR+): padding-safe, graphs isolated, permutation equivariant, jit = no
jit, finite gradients; with many random features it approaches softmax attention per graph."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gnntrack.nn.layers.kernel_attention import KernelAttention, favor_attention
from tests.nn.layers.layer_helpers import (assert_finite_gradients, assert_layer_contract,
                                           node_layer_case, padded_node_loss)

LAYER = KernelAttention(features=8, heads=2, n_random_features=16)


@pytest.fixture(scope="module")
def case():
    return node_layer_case(LAYER)


def test_output_shape(case):
    assert case.fn(case.graph).shape == (case.graph.nodes.shape[0], 8)


def test_padding_safe_isolated_equivariant_and_jit_equal(case):
    assert_layer_contract(case.fn, case.graphs)


def test_gradients_finite(case):
    loss, x = padded_node_loss(LAYER, case.graph)
    assert_finite_gradients(loss, case.params, x)


def test_masked_elements_with_huge_values_change_nothing(case):
    g = case.graph
    mask = np.ones(len(g.nodes), bool)
    mask[[1, 14]] = False
    fn = jax.jit(lambda x: LAYER.apply({"params": case.params}, x, g.n_node, mask))
    moved = g.nodes.copy()
    moved[~mask] = 1e4
    # Same program and shapes; masked keys enter every sum as exact zeros (exp(-inf)), so the
    # real outputs are bitwise the same.
    np.testing.assert_array_equal(np.asarray(fn(moved)), np.asarray(fn(g.nodes)))
    assert not np.asarray(fn(moved))[~mask].any()


def test_many_random_features_approach_softmax_attention_per_graph():
    rng = np.random.default_rng(0)
    n_node = np.array([30, 20], np.int32)
    q, k, v = (jnp.asarray(0.5 * rng.normal(size=(50, 1, 4)), jnp.float32) for _ in range(3))
    graph = np.repeat([0, 1], n_node)
    got = favor_attention(q, k, v, jnp.asarray(graph), jnp.ones(50, bool), 2, 8192)
    logits = np.einsum("nd,md->nm", q[:, 0], k[:, 0]) / 2.0
    logits = np.where(graph[:, None] == graph[None, :], logits, -np.inf)
    weights = np.exp(logits - logits.max(1, keepdims=True))
    want = (weights / weights.sum(1, keepdims=True)) @ np.asarray(v[:, 0])
    # a Monte-Carlo estimate of the softmax kernel: close, not equal
    np.testing.assert_allclose(np.asarray(got[:, 0]), want, atol=0.05)
