"""Kernel (linear) attention over all elements of each event: Performer's FAVOR+, O(N · m).

    layer = KernelAttention(features=64, heads=4, n_random_features=64)
    h = layer(x, n_node, node_mask)            # x float [N, F] -> h [N, features]

Softmax attention exp(q·k / √d) is replaced by φ(q)·φ(k) with positive random features
φ(x) = exp(x W - |x|²/2) / √m (W [d, m] Gaussian from a fixed PRNG key, not trained), whose
expectation is the softmax kernel. Then

    out_i = φ(q_i) · Σ_j φ(k_j) v_jᵀ  /  φ(q_i) · Σ_j φ(k_j)

with the sums over the real elements j of i's own graph: a [m, d] summary per graph and head
instead of the [N, N] attention matrix, so time and memory are linear in N (and in the number
of graphs G of a batch, through the per-graph sums).

The feature map and the sums run in float32 whatever the compute dtype: the exponentials
overflow bf16's precision long before its range, and bf16 sums of thousands of terms lose the
small ones. Each graph's keys share one stabiliser (their own max), so a graph's outputs never
depend on another graph's values; masked and padding elements are neither keys nor queries
(their outputs are 0).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from gnntrack.nn.layers.lsh import real_elements


def feature_logits(x: jnp.ndarray, projection: jnp.ndarray) -> jnp.ndarray:
    """log of FAVOR+'s positive features (up to -log √m): x W - |x|²/2. x float32 [N, H, d],
    projection [d, m] -> [N, H, m]."""
    return jnp.einsum("nhd,dm->nhm", x, projection) - 0.5 * jnp.sum(x * x, -1, keepdims=True)


def favor_attention(q: jnp.ndarray, k: jnp.ndarray, v: jnp.ndarray, graph: jnp.ndarray,
                    real: jnp.ndarray, n_graph: int, n_random_features: int, seed: int = 0) -> jnp.ndarray:
    """Linear attention of each real element over the real elements of its graph.

    q, k, v float [N, H, d]; graph int32 [N]; real bool [N]; n_graph static G.
    Returns float32 [N, H, d] (0 for elements that are not real).
    """
    d = q.shape[-1]
    scale = d ** -0.25  # q·k / √d split between q and k
    q, k, v = (a.astype(jnp.float32) for a in (q * scale, k * scale, v))
    projection = jax.random.normal(jax.random.key(seed), (d, n_random_features), jnp.float32)
    member = (real[:, None] & (graph[:, None] == jnp.arange(n_graph)[None, :])).astype(jnp.float32)
    k_logits, q_logits = feature_logits(k, projection), feature_logits(q, projection)
    # per graph (and head) max over its real keys: exp never overflows, graphs stay independent
    k_max = jax.ops.segment_max(jnp.where(real[:, None], jnp.max(k_logits, -1), -jnp.inf), graph, n_graph)
    k_stab = jax.lax.stop_gradient(jnp.where(jnp.isfinite(k_max), k_max, 0.0))[graph][..., None]
    # -inf (not a product with 0) for keys that are not real: no inf * 0 from their values
    phi_k = jnp.exp(jnp.where(real[:, None, None], k_logits - k_stab, -jnp.inf)) / jnp.sqrt(n_random_features)
    # a query's stabiliser cancels between numerator and denominator: its own max
    phi_q = jnp.exp(q_logits - jax.lax.stop_gradient(jnp.max(q_logits, -1, keepdims=True)))
    kv = jnp.einsum("ng,nhm,nhd->ghmd", member, phi_k, v)       # [G, H, m, d]
    k_sum = jnp.einsum("ng,nhm->ghm", member, phi_k)            # [G, H, m]
    num = jnp.einsum("ng,nhm,ghmd->nhd", member, phi_q, kv)
    den = jnp.einsum("ng,nhm,ghm->nh", member, phi_q, k_sum)
    return jnp.where(real[:, None, None], num / jnp.maximum(den, 1e-30)[..., None], 0.0)


class KernelAttention(nn.Module):
    """Multi-head FAVOR+ attention within each graph (see the module docstring).

    x float [N, F], n_node int [G], node_mask bool [N] or None -> [N, features] in `dtype`
    (0 for masked and padding elements). `features` must be a multiple of `heads`."""

    features: int = 64
    heads: int = 4
    n_random_features: int = 64
    dtype: Any = jnp.float32
    seed: int = 0

    @nn.compact
    def __call__(self, x: jnp.ndarray, n_node: jnp.ndarray, node_mask: jnp.ndarray | None = None):
        if self.features % self.heads:
            raise ValueError(f"features ({self.features}) must be a multiple of heads ({self.heads})")
        n, head_dim = x.shape[0], self.features // self.heads
        graph, real = real_elements(n_node, n, node_mask)
        dense = dict(dtype=self.dtype, param_dtype=jnp.float32)
        q, k, v = (nn.Dense(self.features, name=name, **dense)(x.astype(self.dtype)).reshape(n, self.heads, head_dim)
                   for name in ("query", "key", "value"))
        att = favor_attention(q, k, v, graph, real, n_node.shape[0], self.n_random_features, self.seed)
        out = nn.Dense(self.features, name="out", **dense)(att.reshape(n, self.features).astype(self.dtype))
        return jnp.where(real[:, None], out, 0.0).astype(self.dtype)
