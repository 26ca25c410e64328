"""Helpers shared by the model tests."""

import jax
import jax.numpy as jnp
import numpy as np

# Real edges' logits computed at different shapes (a graph padded or not, to other sizes) agree
# only up to float32 rounding: XLA blocks a matmul differently for a different number of rows
# (e.g. the shared first-layer projection of the nodes), so each row's sums round differently:
# bitwise equal on some CPUs, a few ulp apart on AVX-512 ones. The networks keep activations
# O(1), so the error is a few ulp of the logits' scale, not of each logit (one near 0 has a
# large relative error). 64 ulp of that scale leaves room for other CPUs; padding that leaks
# into a real node moves logits by orders of magnitude more.
CROSS_SHAPE_ULPS = 64


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


def assert_close_across_shapes(got, want):
    """`got` equals `want` (float [E], the same real edges' logits computed at other shapes or by
    an equivalent program) within CROSS_SHAPE_ULPS float32 ulp of want's largest magnitude."""
    want = np.asarray(want)
    atol = CROSS_SHAPE_ULPS * np.finfo(np.float32).eps * float(np.abs(want).max())
    np.testing.assert_allclose(np.asarray(got), want, rtol=0, atol=atol)
