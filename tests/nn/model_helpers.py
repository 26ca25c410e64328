"""Helpers shared by the model tests."""

import jax
import jax.numpy as jnp


def perturbed_params(model, graph, seed=0):
    """Init, then move LayerNorm scales/biases off 1/0 so every parameter matters."""
    params = jax.jit(model.init)(jax.random.key(seed), graph)["params"]
    leaves, tree = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(jax.random.key(seed + 1), len(leaves))
    return jax.tree_util.tree_unflatten(
        tree, [a + 0.1 * jax.random.normal(k, a.shape) for a, k in zip(leaves, keys)])


def tanh_loss(model, graph):
    """A scalar loss of the logits whose gradient reaches every parameter."""
    return lambda p: jnp.sum(jnp.tanh(model.apply({"params": p}, graph)))
