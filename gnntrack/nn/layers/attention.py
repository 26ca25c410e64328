"""GATv2-style attention on an edge list (Brody, Alon & Yahav 2022, "How attentive are graph
attention networks?"), per head h:

    e_ij  = a_h . LeakyReLU(W_t x_i + W_s x_j)       score of edge j -> i
    α_ij  = softmax of e_ij over i's incoming edges    (padding / masked edges excluded)
    x'_i  = Σ_j α_ij W_s x_j                           zeros for a node with no incoming edge

(the paper's W [x_i || x_j] with W = [W_t | W_s]). Heads are concatenated or averaged. The edge
list is any: the GraphsTuple's senders/receivers (jraph padding edges join padding nodes only, so
they never reach a real node) or a `knn_graph`'s edges with its mask.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from gnntrack.nn import ops


def edge_softmax(scores: jnp.ndarray, receivers: jnp.ndarray, num_nodes: int,
                 edge_mask: jnp.ndarray | None = None) -> jnp.ndarray:
    """Softmax of `scores` float [E, ...] over each receiver's incoming edges -> [E, ...].

    Masked edges (edge_mask bool [E] False) get weight 0 and take no share; the weights of a
    receiver with at least one real incoming edge sum to 1. Shifted by each receiver's maximum
    (a constant per softmax, so held out of the gradient) to keep exp in range.
    """
    mask = jnp.ones(scores.shape[:1], bool) if edge_mask is None else edge_mask.astype(bool)
    mask = mask.reshape(mask.shape + (1,) * (scores.ndim - 1))
    top = jax.ops.segment_max(jnp.where(mask, scores, -jnp.inf), receivers, num_segments=num_nodes)
    top = jax.lax.stop_gradient(jnp.where(jnp.isfinite(top), top, 0.0))
    # masked edges never see -inf or a large exponent, so neither value nor gradient is NaN
    ex = jnp.where(mask, jnp.exp(jnp.where(mask, scores - top[receivers], 0.0)), 0.0)
    total = ops.segment_sum(ex, receivers, num_nodes)
    return ex / ops.gather(jnp.where(total > 0, total, 1.0), receivers)


class GATv2(nn.Module):
    """Multi-head GATv2 attention message.

    Call `(x, senders, receivers, edge_mask=None) -> float [N, heads * features]` (concat) or
    `[N, features]` (mean over heads) with
      x          float [N, F]   node features
      senders    int32 [E]      source j of each edge; receivers int32 [E]: target i
      edge_mask  bool  [E]      optional: False edges are ignored
    The attention weights α [E, heads] are sown as `intermediates/attention`.
    """

    features: int = 32   # per head
    heads: int = 4
    concat: bool = True  # concatenate the heads (else average them)
    negative_slope: float = 0.2

    @nn.compact
    def __call__(self, x, senders, receivers, edge_mask=None):
        n, heads, width = x.shape[0], self.heads, self.features
        source = nn.Dense(heads * width, name="source")(x).reshape(n, heads, width)
        target = nn.Dense(heads * width, name="target")(x).reshape(n, heads, width)
        a = self.param("attention", nn.initializers.lecun_normal(in_axis=-1, out_axis=-2),
                       (heads, width))
        z = jax.nn.leaky_relu(ops.gather(source, senders) + ops.gather(target, receivers),
                              self.negative_slope)
        alpha = edge_softmax(jnp.einsum("ehf,hf->eh", z, a), receivers, n, edge_mask)
        self.sow("intermediates", "attention", alpha)
        # one weighted gather-sum per head: no [E, heads, features] product is materialised
        out = jnp.stack([ops.gather_sum(source[:, h], senders, receivers, n, alpha[:, h])
                         for h in range(heads)], axis=1)
        return out.reshape(n, heads * width) if self.concat else jnp.mean(out, axis=1)
