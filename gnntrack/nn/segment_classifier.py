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
    history: bool = False          # segment training with a history table (`gnntrack.train.history`)
    history_dropout: float = 0.0   # stale-embedding dropout rate (training only)

    @nn.compact
    def __call__(self, graph: jraph.GraphsTuple, train: bool = False, return_states: bool = False):
        """Edge logits float32 [E]; with return_states also the node states of every iteration
        [n_iters + 1, N, hidden + F] (what a history table stores).

        With `history` and nodes in the history layout (`gnntrack.train.history.with_history`),
        a node flagged stale takes its state of every iteration from the table instead of
        computing it (no gradient flows into the table), and in training each stale node is
        left out of its neighbours' messages with probability history_dropout."""
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
        raw, stale, table = split_history(graph.nodes, self.n_iters, self.hidden, self.history)
        raw = raw.astype(dtype)
        edges = [(graph.edges.astype(dtype), None)] if self.use_edge_features else []

        def edge_logits(x):  # [N, D] -> [E]
            return edge_net([(x, senders), (x, receivers)] + edges)[:, 0]

        def from_table(x, t):
            return x if table is None else jnp.where(stale[:, None], table[t].astype(x.dtype), x)

        keep = None  # stale-embedding dropout: messages from dropped stale nodes are cut
        if table is not None and train and self.history_dropout > 0:
            dropped = stale & (jax.random.uniform(self.make_rng("dropout"), stale.shape) < self.history_dropout)
            keep = ~(dropped[senders] | dropped[receivers])
        x = from_table(jnp.concatenate([input_net([(raw, None)]), raw], axis=-1), 0)
        states = [x]
        for t in range(self.n_iters):
            w = jax.nn.sigmoid(edge_logits(x))
            if keep is not None:
                w = jnp.where(keep, w, 0.0)
            m = message(x, w[:, None], senders, receivers)
            x = from_table(jnp.concatenate([node_net([(m, None), (x, None)]), raw], axis=-1) + x, t + 1)
            states.append(x)
        logits = edge_logits(x).astype(jnp.float32)
        return (logits, jnp.stack(states)) if return_states else logits


def split_history(nodes: jnp.ndarray, n_iters: int, hidden: int, history: bool):
    """(raw features [N, F], stale bool [N] or None, table [n_iters + 1, N, hidden + F] or None).

    The history layout is [raw F | stale flag | table of n_iters + 1 states of width hidden + F],
    i.e. (n_iters + 1) * hidden + 1 + (n_iters + 2) * F columns; nodes of any other width (a whole
    graph at validation, a model without `history`) are raw features."""
    width = nodes.shape[-1]
    extra = width - 1 - (n_iters + 1) * hidden
    if not history or extra < n_iters + 2 or extra % (n_iters + 2):
        return nodes, None, None
    f = extra // (n_iters + 2)
    table = jax.lax.stop_gradient(nodes[:, f + 1:]).reshape(nodes.shape[0], n_iters + 1, hidden + f)
    return nodes[:, :f], nodes[:, f] > 0.5, jnp.swapaxes(table, 0, 1)
