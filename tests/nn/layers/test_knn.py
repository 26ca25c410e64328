"""knn_graph: exact neighbours per graph, padding never a neighbour, static shapes under jit."""

import functools

import jax
import jraph
import numpy as np

from gnntrack.nn.layers.knn import knn_graph, masked_max, masked_mean, node_graph_index
from tests.nn.layers.layer_helpers import (batch_of, padded, permute_nodes,
                                           within_graph_permutation)

K = 4


def brute_force(coords, n_node, k, node_mask=None):
    """Reference neighbour lists: list over nodes of the ordered neighbour indices (float64)."""
    x = np.asarray(coords, np.float64)
    graph = np.repeat(np.arange(len(n_node)), n_node)
    real = np.ones(len(x), bool) if node_mask is None else np.asarray(node_mask)
    out = []
    for i in range(len(x)):
        cand = np.flatnonzero((graph == graph[i]) & real & (np.arange(len(x)) != i)) if real[i] else []
        d2 = np.sum((x[cand] - x[i]) ** 2, axis=-1)
        out.append(list(np.asarray(cand)[np.argsort(d2)][:k]))
    return out


def as_lists(knn, n, k):
    """The kNN graph's real neighbours per node (ordered), with its layout checked."""
    senders, mask = np.asarray(knn.senders).reshape(n, k), np.asarray(knn.mask).reshape(n, k)
    np.testing.assert_array_equal(knn.receivers, np.repeat(np.arange(n), k))
    # real neighbours first, then masked self-loops
    assert all(list(m) == sorted(m, reverse=True) for m in mask)
    np.testing.assert_array_equal(senders[~mask], np.nonzero(~mask)[0])
    return [list(s[m]) for s, m in zip(senders, mask)]


def knn_of(graph, k=K, **kw):
    return jax.jit(functools.partial(knn_graph, k=k, **kw))(graph.nodes, graph.n_node)


def test_node_graph_index_follows_n_node_and_skips_empty_graphs():
    np.testing.assert_array_equal(node_graph_index(np.array([2, 0, 3]), 5), [0, 0, 2, 2, 2])


def test_matches_brute_force_per_graph():
    # graphs of 9, 3, 1 and 12 nodes: the small ones have fewer than k + 1 nodes -> masked slots
    graph = jraph.batch_np(batch_of())
    n = graph.nodes.shape[0]
    for block_size in (5, 256):  # a remainder block, and one block
        got = as_lists(knn_of(graph, block_size=block_size), n, K)
        assert got == brute_force(graph.nodes, graph.n_node, K)


def test_more_neighbours_asked_than_nodes():
    graph = batch_of(sizes=(3,))[0]
    assert as_lists(knn_of(graph, k=6), 3, 6) == brute_force(graph.nodes, graph.n_node, 6)


def test_no_nodes_no_edges():
    knn = knn_graph(np.zeros((0, 3), np.float32), np.zeros(1, np.int32), K)
    assert [a.shape for a in knn] == [(0,)] * 3


def test_padding_is_nobodys_neighbour():
    graph = jraph.batch_np(batch_of())
    n = graph.nodes.shape[0]
    want = brute_force(graph.nodes, graph.n_node, K)
    pad = padded(graph, extra_nodes=7)
    # unmasked: the padding graph only neighbours itself, real nodes' lists are unchanged
    assert as_lists(knn_of(pad), n + 7, K)[:n] == want
    # masked: padding nodes have no edges at all
    mask = jraph.get_node_padding_mask(pad)
    got = jax.jit(functools.partial(knn_graph, k=K))(pad.nodes, pad.n_node, node_mask=mask)
    lists = as_lists(got, n + 7, K)
    assert lists[:n] == want and all(not s for s in lists[n:])


def test_permutation_equivariant():
    graph = jraph.batch_np(batch_of())
    perm = within_graph_permutation(graph.n_node, seed=1)
    inverse = np.argsort(perm)
    lists = as_lists(knn_of(graph), len(perm), K)
    permuted = as_lists(knn_of(permute_nodes(graph, perm)), len(perm), K)
    assert [[perm[j] for j in permuted[inverse[i]]] for i in range(len(perm))] == lists


def test_jit_matches_no_jit():
    graph = jraph.batch_np(batch_of())
    with jax.disable_jit():
        eager = knn_graph(graph.nodes, graph.n_node, K, block_size=5)
    jitted = knn_of(graph, block_size=5)
    for a, b in zip(eager, jitted):
        np.testing.assert_array_equal(a, b)  # integers and booleans: exact


def test_masked_mean_and_max_give_zeros_without_neighbours():
    values = np.array([[[1.0], [-3.0]], [[5.0], [7.0]]], np.float32)
    mask = np.array([[True, True], [False, False]])
    np.testing.assert_allclose(masked_mean(values, mask), [[-1.0], [0.0]])
    np.testing.assert_allclose(masked_max(values, mask), [[1.0], [0.0]])
