"""Graphs and checks shared by the layer tests.

A check takes `fn(graph) -> float [N, ...]` (a layer applied to a GraphsTuple's nodes) and holds
it to a property every layer must have: jraph padding never changes real nodes' outputs, graphs
batched together never see each other, relabelling nodes relabels the outputs, jit = no jit.
Outputs computed at different shapes (or by a differently compiled program) agree only up to
float32 rounding (XLA blocks a matmul differently for another row count), hence
`assert_close_across_shapes`; neighbour choices stay exact because random continuous inputs
leave distance gaps far above that rounding.
"""

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import jraph
import numpy as np

from gnntrack.bench import random_graph
from tests.nn.model_helpers import assert_close_across_shapes

SIZES = (9, 3, 1, 12)  # with k = 4: graphs with fewer than k + 1 nodes, and a lone node


def batch_of(sizes=SIZES, features=3, edges_per_node=3, seed=0) -> list[jraph.GraphsTuple]:
    """One random numpy graph per size (edges within the graph); see `gnntrack.bench.random_graph`."""
    return [random_graph(n, edges_per_node * n, n_node_features=features, seed=seed + i)[0]
            for i, n in enumerate(sizes)]


class NodeLayerCase(NamedTuple):
    """A layer `(x, n_node) -> [N, ...]` initialised on the batch of `batch_of()`."""

    graphs: list        # the graphs alone
    graph: jraph.GraphsTuple  # batched
    params: dict
    fn: Callable        # jitted graph -> layer(graph.nodes, graph.n_node)


def node_layer_case(layer) -> NodeLayerCase:
    graphs = batch_of()
    graph = jraph.batch_np(graphs)
    params = jax.jit(layer.init)(jax.random.key(0), graph.nodes, graph.n_node)["params"]
    # jitted: the checks call it at several shapes
    fn = jax.jit(lambda g: layer.apply({"params": params}, g.nodes, g.n_node))
    return NodeLayerCase(graphs, graph, params, fn)


def padded_node_loss(layer, graph):
    """(loss(params, x), x): a scalar of the layer's outputs on `graph` padded by jraph, whose
    gradient reaches every parameter and node feature."""
    pad = padded(graph)

    def loss(params, x):
        return jnp.sum(jnp.tanh(layer.apply({"params": params}, x, pad.n_node)))
    return loss, jnp.asarray(pad.nodes)


def padded(graph, extra_nodes=5, extra_edges=7, extra_graphs=2) -> jraph.GraphsTuple:
    """`graph` padded by jraph (a padding graph with all padding nodes/edges, then empty graphs)."""
    return jraph.pad_with_graphs(graph, n_node=int(np.sum(graph.n_node)) + extra_nodes,
                                 n_edge=int(np.sum(graph.n_edge)) + extra_edges,
                                 n_graph=len(graph.n_node) + extra_graphs)


def within_graph_permutation(n_node, seed=0) -> np.ndarray:
    """int [N]: a random relabelling of the nodes that keeps every graph's run of nodes in place."""
    rng = np.random.default_rng(seed)
    starts = np.concatenate([[0], np.cumsum(n_node)[:-1]])
    return np.concatenate([s + rng.permutation(n) for s, n in zip(starts, n_node)]).astype(np.int32)


def permute_nodes(graph, perm) -> jraph.GraphsTuple:
    """The same graph with new node i = old node perm[i] (edges relabelled, edge order kept)."""
    inverse = np.argsort(perm).astype(np.int32)
    return graph._replace(nodes=graph.nodes[perm], senders=inverse[graph.senders],
                          receivers=inverse[graph.receivers])


def assert_padding_safe(fn, graph, level="node"):
    """Real outputs (rows per node, edge or graph: `level`) do not change when jraph padding
    (nodes, edges, graphs) is added."""
    want = fn(graph)
    n = {"node": graph.nodes.shape[0], "edge": len(graph.senders), "graph": len(graph.n_node)}[level]
    for extra in [(1, 0, 1), (40, 3, 4)]:  # the least padding, and more padding than graph
        assert_close_across_shapes(fn(padded(graph, *extra))[:n], want)


def assert_graphs_isolated(fn, graphs):
    """Graphs batched together give each graph's outputs alone (nothing crosses graphs)."""
    alone = np.concatenate([np.asarray(fn(g)) for g in graphs])
    assert_close_across_shapes(fn(jraph.batch_np(graphs)), alone)


def assert_permutation_equivariant(fn, graph, seed=0):
    """Relabelling the nodes (within their graphs) relabels the outputs the same way."""
    perm = within_graph_permutation(graph.n_node, seed)
    assert_close_across_shapes(fn(permute_nodes(graph, perm)), np.asarray(fn(graph))[perm])


def assert_jit_matches_eager(fn, graph):
    """jax.jit(fn) and fn run op by op agree."""
    assert_close_across_shapes(jax.jit(fn)(graph), fn(graph))


def assert_layer_contract(fn, graphs):
    """All of the above for jitted `fn` on `graphs` (jit vs no jit on fn's unjitted function)."""
    graph = jraph.batch_np(graphs)
    assert_padding_safe(fn, graph)
    assert_graphs_isolated(fn, graphs)
    assert_permutation_equivariant(fn, graph)
    assert_jit_matches_eager(fn.__wrapped__, graph)


def assert_finite_gradients(loss, *args):
    """Gradients of scalar `loss(*args)` w.r.t. every argument are finite and not all zero."""
    grads = jax.jit(jax.grad(loss, argnums=tuple(range(len(args)))))(*args)
    leaves = jax.tree_util.tree_leaves(grads)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)
    assert all(float(jnp.max(jnp.abs(g))) > 0 for g in leaves)
