"""The HEP.TrkX segment classifier (Farrell et al. 2018; the sparse form of Exa.TrkX's gnn_sparse),
written as the formulation reads: the reference that the fast form
(`gnntrack.nn.fast.FastSegmentClassifier`, `model.impl = "fast"`) is held to.

`graph` is a `jraph.GraphsTuple` (nodes float [N, F]; edges float [E, F_e] or None; senders,
receivers int32 [E]), possibly padded with `jraph.pad_with_graphs`: padding edges connect padding
nodes only and every operation is per row or a sum over a node's own edges, so padding never
changes the logits of real edges.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import jraph

from gnntrack.nn import ops
from gnntrack.nn.layers import MLP, get_dtype
from gnntrack.nn.registry import get_message


class SegmentClassifier(nn.Module):
    """HEP.TrkX segment classifier; returns per-edge logits float32 [E].

    x = [tanh(LN(W·raw)), raw]; n_iters × { w = σ(edge_net([x_src, x_dst (, e)]));
    x ← [node_net([message(x, w), x]), raw] + x } ; logits = edge_net([x_src, x_dst (, e)]).
    The edge and node networks are shared across iterations, as in the published model.
    Parameters: input_net, edge_net and node_net, each {"dense_i": {kernel, bias},
    "norm_i": {scale, bias}} (`layers.MLP`).
    """

    hidden: int = 64
    n_iters: int = 8
    message: str = "bidirectional_weighted_sum"  # a registered message function
    activation: str = "tanh"
    layer_norm: bool = True
    edge_layers: int = 3          # hidden layers of the edge network (plus a 1-unit output)
    node_layers: int = 4          # layers of the node network
    use_edge_features: bool = False
    compute_dtype: str = "float32"

    @nn.compact
    def __call__(self, graph: jraph.GraphsTuple, train: bool = False) -> jnp.ndarray:
        del train  # no dropout / batch statistics
        dtype = get_dtype(self.compute_dtype)
        common = dict(activation=self.activation, layer_norm=self.layer_norm, dtype=dtype)
        input_net = MLP([self.hidden], final_activation=True, name="input_net", **common)
        edge_net = MLP([self.hidden] * self.edge_layers + [1], final_activation=False,
                       name="edge_net", **common)
        node_net = MLP([self.hidden] * self.node_layers, final_activation=True, name="node_net",
                       **common)
        # the reference runs its message in XLA (the fast form may use the CPU kernels)
        message = ops.with_kernels(get_message(self.message), False)
        senders, receivers = graph.senders, graph.receivers
        raw = graph.nodes.astype(dtype)
        edges = [(graph.edges.astype(dtype), None)] if self.use_edge_features else []

        def edge_logits(x):  # [N, D] -> [E]
            return edge_net([(x, senders), (x, receivers)] + edges)[:, 0]

        x = jnp.concatenate([input_net([(raw, None)]), raw], axis=-1)
        for _ in range(self.n_iters):
            w = jax.nn.sigmoid(edge_logits(x))
            m = message(x, w[:, None], senders, receivers)
            x = jnp.concatenate([node_net([(m, None), (x, None)]), raw], axis=-1) + x
        return edge_logits(x).astype(jnp.float32)
