"""gnntrack.nn.layers.dense: jraph batches as [G, P, F] blocks and kNN inside each graph."""

import jax.numpy as jnp
import numpy as np

from gnntrack.nn.layers.dense import dense_knn, from_dense, gather_neighbours, masked_pool_mean, to_dense


def _batch(sizes, f=3, pad_nodes=4, seed=0):
    """nodes [sum(sizes) + pad_nodes, f] and n_node [len(sizes) + 1] (last graph: jraph padding)."""
    rng = np.random.default_rng(seed)
    nodes = rng.normal(size=(sum(sizes) + pad_nodes, f)).astype(np.float32)
    return nodes, np.array([*sizes, pad_nodes], np.int32)


def test_to_dense_puts_node_i_of_graph_g_at_g_i_and_drops_nodes_past_max_nodes():
    nodes, n_node = _batch([2, 5, 0, 3])
    x, mask = to_dense(nodes, n_node, max_nodes=4)
    assert x.shape == (5, 4, 3) and mask.shape == (5, 4)
    np.testing.assert_array_equal(np.asarray(mask).sum(1), [2, 4, 0, 3, 4])
    # graph 1 starts at node 2; its 5th node (index 6) is past max_nodes and dropped
    np.testing.assert_array_equal(np.asarray(x[1]), nodes[2:6])
    np.testing.assert_array_equal(np.asarray(x[3, :3]), nodes[7:10])
    assert not np.any(np.asarray(x)[~np.asarray(mask)])


def test_to_dense_leaves_out_nodes_outside_node_mask():
    nodes, n_node = _batch([2, 3], pad_nodes=3)
    node_mask = np.arange(len(nodes)) < 5  # the last graph is jraph's padding
    x, mask = to_dense(nodes, n_node, 4, node_mask=node_mask)
    np.testing.assert_array_equal(np.asarray(mask).sum(1), [2, 3, 0])


def test_from_dense_inverts_to_dense_on_the_kept_nodes():
    nodes, n_node = _batch([2, 5, 3])
    x, _ = to_dense(nodes, n_node, 4)
    back = np.asarray(from_dense(x, n_node, len(nodes)))
    kept = np.ones(len(nodes), bool)
    kept[6] = False  # the 5th node of graph 1 (the padding graph's 4 nodes all fit)
    np.testing.assert_array_equal(back[kept], nodes[kept])
    assert not np.any(back[~kept])


def test_dense_knn_matches_brute_force_and_padded_slots_are_never_neighbours():
    rng = np.random.default_rng(1)
    coords = rng.normal(size=(3, 6, 2)).astype(np.float32)
    mask = np.array([[1, 1, 1, 1, 1, 0], [1, 1, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0]], bool)
    coords[~mask] = 0.0  # padded slots sit at the origin, close to everyone
    index, valid = (np.asarray(a) for a in dense_knn(jnp.asarray(coords), jnp.asarray(mask), k=3))
    for g in range(3):
        for i in range(6):
            real = [j for j in np.flatnonzero(mask[g]) if j != i] if mask[g, i] else []
            d = [np.sum((coords[g, i] - coords[g, j]) ** 2) for j in real]
            want = [real[j] for j in np.argsort(d, kind="stable")[:3]]
            assert list(index[g, i][valid[g, i]]) == want
            assert np.all(index[g, i][~valid[g, i]] == i)  # masked slots point at the node itself
    assert not np.any(mask[np.arange(3)[:, None, None], index][valid] == 0)


def test_dense_knn_with_more_neighbours_than_slots_masks_the_extra_ones():
    index, valid = dense_knn(jnp.zeros((1, 2, 2)), jnp.ones((1, 2), bool), k=4)
    assert index.shape == (1, 2, 4)
    np.testing.assert_array_equal(np.asarray(valid).sum(-1), [[1, 1]])


def test_gather_neighbours_and_masked_pool_mean():
    x = jnp.arange(12.0).reshape(1, 4, 3)
    index = jnp.array([[[1, 2], [0, 0], [3, 1], [2, 2]]], jnp.int32)
    out = np.asarray(gather_neighbours(x, index))
    np.testing.assert_array_equal(out[0, 2, 0], np.asarray(x[0, 3]))
    pooled = masked_pool_mean(x, jnp.array([[True, True, False, False]]))
    np.testing.assert_allclose(np.asarray(pooled), [[1.5, 2.5, 3.5]])
