"""GravNet-style layer (Qasim, Kieseler, Iiyama & Pierini 2019, "Learning representations of
irregular particle-detector geometry with distance-weighted graph networks").

    s_i = W_s x_i + b_s                     learned coordinates  [N, space_dims]
    f_i = W_f x_i + b_f                     learned features     [N, propagate_dims]
    w_ij = exp(-10 |s_i - s_j|^2)           for the k nearest neighbours j of i in s
    x'_i = act(W_o [x_i, mean_j w_ij f_j, max_j w_ij f_j] + b_o)

The neighbour choice is not differentiable, the weights are: the coordinates learn through w_ij.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from gnntrack.nn import ops
from gnntrack.nn.layers import get_activation
from gnntrack.nn.layers.knn import BLOCK_SIZE, knn_graph, masked_max, masked_mean


class GravNet(nn.Module):
    """One GravNet layer.

    Call `(x, n_node, node_mask=None) -> float [N, features]` with
      x         float [N, F]  node features
      n_node    int   [G]     nodes per graph (neighbours come from the node's own graph only)
      node_mask bool  [N]     optional: False nodes are never neighbours (see `knn_graph`)
    A node without neighbours aggregates zeros.
    """

    space_dims: int = 4
    propagate_dims: int = 22
    features: int = 48
    k: int = 40
    activation: str = "tanh"
    block_size: int = BLOCK_SIZE

    @nn.compact
    def __call__(self, x, n_node, node_mask=None):
        n = x.shape[0]
        s = nn.Dense(self.space_dims, name="space")(x)
        f = nn.Dense(self.propagate_dims, name="propagate")(x)
        knn = knn_graph(s, n_node, self.k, node_mask=node_mask, block_size=self.block_size)
        d2 = jnp.sum((ops.gather(s, knn.senders) - jnp.repeat(s, self.k, axis=0)) ** 2, axis=-1)
        weighted = (jnp.exp(-10.0 * d2)[:, None] * ops.gather(f, knn.senders)).reshape(n, self.k, -1)
        mask = knn.mask.reshape(n, self.k)
        h = jnp.concatenate([x, masked_mean(weighted, mask), masked_max(weighted, mask)], axis=-1)
        return get_activation(self.activation)(nn.Dense(self.features, name="output")(h))
