"""EdgeConv, ParticleNet style (Qu & Gouskos 2019, "ParticleNet: jet tagging via particle clouds").

For every node i and each of its k nearest neighbours j (in `coords`, within i's own graph):

    h_ij = MLP([x_i, x_j - x_i])            the edge function, shared by all edges
    x'_i = act(mean_j h_ij + W x_i + b)      mean over the real neighbours + linear shortcut

ParticleNet's BatchNorm becomes LayerNorm here: per row, so no running statistics in the train
state and no mixing of padding into real rows.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from gnntrack.nn import ops
from gnntrack.nn.layers import MLP, get_activation
from gnntrack.nn.layers.knn import BLOCK_SIZE, knn_graph, masked_mean


class EdgeConv(nn.Module):
    """One EdgeConv block.

    Call `(x, n_node, coords=None, node_mask=None) -> float [N, features[-1]]` with
      x         float [N, F]  node features
      n_node    int   [G]     nodes per graph (neighbours come from the node's own graph only)
      coords    float [N, D]  where to look for neighbours (default: x itself, ParticleNet's
                              "dynamic graph": the previous block's output after the first block)
      node_mask bool  [N]     optional: False nodes are never neighbours (see `knn_graph`)
    A node without neighbours gets act(shortcut) only.
    """

    features: Sequence[int] = (64, 64, 64)  # widths of the edge MLP's layers
    k: int = 16
    activation: str = "relu"
    layer_norm: bool = True
    block_size: int = BLOCK_SIZE

    @nn.compact
    def __call__(self, x, n_node, coords=None, node_mask=None):
        x = jnp.asarray(x)
        n = x.shape[0]
        knn = knn_graph(x if coords is None else coords, n_node, self.k, node_mask=node_mask,
                        block_size=self.block_size)
        x_i = jnp.repeat(x, self.k, axis=0)  # = x[knn.receivers]
        x_j = ops.gather(x, knn.senders)  # backward: a segment sum, not a scatter
        h = MLP(self.features, self.activation, self.layer_norm, True, name="edge_mlp")(
            [(x_i, None), (x_j - x_i, None)])
        agg = masked_mean(h.reshape(n, self.k, -1), knn.mask.reshape(n, self.k))
        shortcut = nn.Dense(self.features[-1], name="shortcut")(x)
        return get_activation(self.activation)(agg + shortcut)
