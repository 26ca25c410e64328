"""A small message-passing network with a node or graph head, for node and graph tasks.

    encoder: x = MLP(raw);  n_iters × { e = MLP([x_src, x_dst]); x ← x + MLP([x, message(x, e)]) }
    head:    level 'node'  -> MLP(x) per node           -> float32 [N, outputs]
             level 'graph' -> MLP(mean of x per graph)  -> float32 [G, outputs]

`level` and `outputs` are the task's (`gnntrack.tasks.model_config_for` sets them). Padding is
safe: jraph's padding edges join padding nodes only, and the padding nodes form their own
padding graph, so neither a message nor a graph mean mixes padding into a real node or graph.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import jraph
import ml_collections

from gnntrack.errors import ConfigError
from gnntrack.nn.layers import MLP, get_activation, get_dtype
from gnntrack.nn.registry import get_message, register_model

LEVELS = ("node", "graph")


def graph_net_config() -> ml_collections.ConfigDict:
    """Defaults of `model.name = "graph_net"`."""
    return ml_collections.ConfigDict(dict(
        name="graph_net", hidden=32, n_iters=2, message="sum_incoming", activation="relu",
        layer_norm=False, level="node", outputs=1, compute_dtype="float32"))


def graph_mean(x: jnp.ndarray, n_node: jnp.ndarray) -> jnp.ndarray:
    """Mean of the node rows x [N, D] of each graph (n_node int32 [G]) -> [G, D]; 0 for an
    empty graph."""
    n_graph = n_node.shape[0]
    ids = jnp.repeat(jnp.arange(n_graph), n_node, total_repeat_length=x.shape[0])
    total = jax.ops.segment_sum(x, ids, num_segments=n_graph)
    count = jax.ops.segment_sum(jnp.ones((x.shape[0], 1), x.dtype), ids, num_segments=n_graph)
    return total / jnp.maximum(count, 1.0)


class GraphNet(nn.Module):
    """See the module docstring; returns float32 [N, outputs] or [G, outputs]."""

    hidden: int = 32
    n_iters: int = 2
    message: str = "sum_incoming"
    activation: str = "relu"
    layer_norm: bool = False
    level: str = "node"
    outputs: int = 1
    compute_dtype: str = "float32"

    @nn.compact
    def __call__(self, graph: jraph.GraphsTuple, train: bool = False) -> jnp.ndarray:
        del train
        dtype = get_dtype(self.compute_dtype)
        message = get_message(self.message)
        s, r = graph.senders, graph.receivers
        common = dict(activation=self.activation, layer_norm=self.layer_norm, dtype=dtype)
        x = MLP([self.hidden], final_activation=True, name="encoder", **common)(
            [(graph.nodes.astype(dtype), None)])
        for i in range(self.n_iters):
            e = MLP([self.hidden], final_activation=True, name=f"edge_{i}", **common)([(x, s), (x, r)])
            m = message(x, e, s, r)
            x = x + MLP([self.hidden], final_activation=True, name=f"node_{i}", **common)(
                [(x, None), (m, None)])
        if self.level == "graph":
            x = graph_mean(x, graph.n_node)
        head = MLP([self.hidden, self.outputs], final_activation=False, name="head", **common)
        return head([(x, None)]).astype(jnp.float32)


@register_model("graph_net", graph_net_config)
def build_graph_net(values: ml_collections.ConfigDict) -> GraphNet:
    """The graph net of a complete `model` group (level and outputs checked)."""
    get_activation(values.activation)
    if values.level not in LEVELS:
        raise ConfigError(f"config key 'model.level' must be one of {', '.join(LEVELS)}, got {values.level!r}")
    for key in ("hidden", "outputs"):
        if not isinstance(values[key], int) or values[key] < 1:
            raise ConfigError(f"config key 'model.{key}' must be a positive integer, got {values[key]!r}")
    fields = values.to_dict()
    del fields["name"]
    return GraphNet(**fields)
