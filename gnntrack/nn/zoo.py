"""Example models built from the parametrised layers (`gnntrack.nn.layers.edgeconv`, ...).

    edgeconv       EdgeConv node embeddings (kNN in feature space, within each graph), then an
                   edge MLP on [h_s, h_r] over the graph's own edges -> logits float32 [E]
    ParticleNet    EdgeConv blocks, mean over each graph's nodes, MLP head -> float32 [G, outputs]
                   (Qu & Gouskos 2019, without the paper's dropout and BatchNorm; registered
                   as a model once a graph task uses it)

Both take a jraph GraphsTuple, padded or not: kNN never leaves a node's graph and jraph's
padding nodes form a graph of their own, so padding never reaches a real node, edge or graph.
The kNN search costs O(N^2) in the batch's node count (see `gnntrack.nn.layers.knn`).
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp
import jraph
import ml_collections

from gnntrack.errors import ConfigError
from gnntrack.nn.layers import MLP, get_activation
from gnntrack.nn.layers.edgeconv import EdgeConv
from gnntrack.nn.layers.knn import node_graph_index
from gnntrack.nn.registry import register_model


def edgeconv_config() -> ml_collections.ConfigDict:
    """Defaults of `model.name = "edgeconv"`."""
    return ml_collections.ConfigDict(dict(
        name="edgeconv", hidden=32, k=8, n_blocks=2, block_layers=2, head_layers=2,
        activation="relu", layer_norm=True))


class EdgeConvEdgeClassifier(nn.Module):
    """`n_blocks` EdgeConv blocks (each `block_layers` wide-`hidden` layers, kNN in the previous
    block's output) give node embeddings h; an MLP on [h_s, h_r] scores each edge of the graph."""

    hidden: int = 32
    k: int = 8
    n_blocks: int = 2
    block_layers: int = 2
    head_layers: int = 2
    activation: str = "relu"
    layer_norm: bool = True

    @nn.compact
    def __call__(self, graph: jraph.GraphsTuple, train: bool = False) -> jnp.ndarray:
        del train
        h = jnp.asarray(graph.nodes, jnp.float32)
        for i in range(self.n_blocks):
            h = EdgeConv((self.hidden,) * self.block_layers, self.k, self.activation,
                         self.layer_norm, name=f"edgeconv_{i}")(h, graph.n_node)
        head = MLP([self.hidden] * self.head_layers + [1], self.activation, self.layer_norm, False,
                   name="edge_head")
        return head([(h, graph.senders), (h, graph.receivers)])[:, 0].astype(jnp.float32)


@register_model("edgeconv", edgeconv_config)
def build_edgeconv(values: ml_collections.ConfigDict) -> EdgeConvEdgeClassifier:
    """The EdgeConv edge classifier of a complete `model` group (sizes and activation checked)."""
    get_activation(values.activation)
    for key in ("hidden", "k", "n_blocks", "block_layers", "head_layers"):
        if not isinstance(values[key], int) or values[key] < 1:
            raise ConfigError(f"config key 'model.{key}' must be a positive integer, got {values[key]!r}")
    fields = values.to_dict()
    del fields["name"]
    return EdgeConvEdgeClassifier(**fields)


class ParticleNet(nn.Module):
    """ParticleNet-like graph classifier: EdgeConv blocks (widths per block; the first block's
    kNN in the input features, later ones in the previous block's output), the mean of each
    graph's node features, and an MLP head -> float32 [G, outputs] (one logit per graph for
    two classes)."""

    blocks: Sequence[Sequence[int]] = ((64, 64, 64), (128, 128, 128), (256, 256, 256))
    k: int = 16
    head: Sequence[int] = (256,)
    outputs: int = 1
    activation: str = "relu"

    @nn.compact
    def __call__(self, graph: jraph.GraphsTuple, train: bool = False) -> jnp.ndarray:
        del train
        h = jnp.asarray(graph.nodes, jnp.float32)
        for i, widths in enumerate(self.blocks):
            h = EdgeConv(tuple(widths), self.k, self.activation, name=f"edgeconv_{i}")(h, graph.n_node)
        n_graph = graph.n_node.shape[0]
        pooled = jraph.segment_mean(h, node_graph_index(graph.n_node, h.shape[0]), n_graph)
        head = MLP(list(self.head) + [self.outputs], self.activation, False, False, name="head")
        return head([(pooled, None)]).astype(jnp.float32)
