"""k-nearest-neighbour graphs inside `jit`: static shapes, per graph of a (padded) jraph batch.

    knn = knn_graph(coords, graph.n_node, k=16)           # coords float [N, D]
    x_j = x[knn.senders]                                  # [N*k, F]: neighbour m of node i at i*k + m
    mean = masked_mean(x_j.reshape(N, k, F), knn.mask.reshape(N, k))

Every node gets exactly k edge slots (neighbour -> node), so the shapes depend only on N and k.
Candidates are the other nodes of the node's own graph (graph id per node from `n_node`), never
itself and never a node outside `node_mask`; a slot with no such candidate left (a graph with
fewer than k + 1 real nodes, or a masked node's own slots) is a self-loop with mask False.
jraph's padding nodes form a graph of their own, so without any mask they only ever neighbour each
other; pass `jraph.get_node_padding_mask(graph)` as `node_mask` to take them out entirely.

Cost: all N x N squared distances of the batch are computed (one matmul per block of rows, then a
top-k over each row), so time is O(N^2 D) and grows with the square of the *batch*, cross-graph
pairs included; memory is O(block_size * N) because rows are processed in blocks under
`lax.map`. That suits jets and other small graphs; a sub-quadratic (binned, LSH) form for large
events is left for later.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

BLOCK_SIZE = 256  # rows of the distance matrix held at once: memory ~ BLOCK_SIZE * N floats


class KnnGraph(NamedTuple):
    """Edge list of a kNN graph, edge i*k + m = m-th nearest neighbour of node i (nearest first).

    senders    int32 [N*k]  the neighbour j (a self-loop where mask is False)
    receivers  int32 [N*k]  the node i (= repeat(arange(N), k))
    mask       bool  [N*k]  True for real neighbour edges
    """

    senders: jnp.ndarray
    receivers: jnp.ndarray
    mask: jnp.ndarray


def node_graph_index(n_node: jnp.ndarray, num_nodes: int) -> jnp.ndarray:
    """int32 [N]: the graph each node belongs to, from `n_node` int [G] (static N = num_nodes)."""
    graphs = jnp.arange(n_node.shape[0], dtype=jnp.int32)
    return jnp.repeat(graphs, n_node, total_repeat_length=num_nodes)


def knn_graph(coords: jnp.ndarray, n_node: jnp.ndarray, k: int, *,
              node_mask: jnp.ndarray | None = None, block_size: int = BLOCK_SIZE) -> KnnGraph:
    """The k nearest neighbours (Euclidean, in `coords`) of every node within its own graph.

    Args:
      coords: float [N, D] coordinates; no gradient flows through the choice of neighbours
        (recompute distances from `coords[senders]` where they should be differentiable).
      n_node: int [G] nodes per graph (jraph layout: graphs are consecutive runs of nodes).
      k: neighbours per node (static).
      node_mask: optional bool [N]; False nodes are nobody's neighbour and get no edges.
      block_size: rows of the distance matrix computed at once.
    Returns:
      KnnGraph with arrays of length N*k.
    """
    n = coords.shape[0]
    if n == 0:
        empty = jnp.zeros(0, jnp.int32)
        return KnnGraph(senders=empty, receivers=empty, mask=jnp.zeros(0, bool))
    x = jax.lax.stop_gradient(jnp.asarray(coords, jnp.float32))
    graph = node_graph_index(n_node, n)
    node = jnp.arange(n, dtype=jnp.int32)
    # nodes past sum(n_node) (an unpadded array longer than its graphs) belong to no graph
    valid = node < jnp.sum(n_node)
    if node_mask is not None:
        valid = valid & node_mask.astype(bool)
    sq = jnp.sum(x * x, axis=-1)
    kk = min(k, n)

    b = min(block_size, n)
    n_blocks = -(-n // b)
    # row blocks [n_blocks, B]; the last one is filled up with node n-1 (cut off below)
    blocks = jnp.minimum(jnp.arange(n_blocks * b, dtype=jnp.int32), n - 1).reshape(n_blocks, b)

    def nearest(i):  # i int32 [B]: this block's rows
        # |x_i - x_j|^2 = |x_i|^2 + |x_j|^2 - 2 x_i.x_j: one [B, D] x [D, N] matmul per block
        d2 = sq[i][:, None] + sq[None, :] - 2.0 * jnp.dot(
            x[i], x.T, precision=jax.lax.Precision.HIGHEST)
        ok = ((graph[i][:, None] == graph[None, :]) & valid[None, :] & valid[i][:, None]
              & (i[:, None] != node[None, :]))
        neg, idx = jax.lax.top_k(jnp.where(ok, -d2, -jnp.inf), kk)
        real = neg > -jnp.inf
        return jnp.where(real, idx, i[:, None]).astype(jnp.int32), real

    senders, mask = jax.lax.map(nearest, blocks)
    senders, mask = senders.reshape(-1, kk)[:n], mask.reshape(-1, kk)[:n]
    if kk < k:  # fewer nodes than k in the whole batch: the missing slots are masked self-loops
        senders = jnp.concatenate([senders, jnp.broadcast_to(node[:, None], (n, k - kk))], axis=1)
        mask = jnp.concatenate([mask, jnp.zeros((n, k - kk), bool)], axis=1)
    return KnnGraph(senders=senders.reshape(-1), receivers=jnp.repeat(node, k),
                    mask=mask.reshape(-1))


def masked_mean(values: jnp.ndarray, mask: jnp.ndarray) -> jnp.ndarray:
    """Mean over axis 1 of `values` [N, k, F] where `mask` [N, k] is True; zeros where none is."""
    weight = mask.astype(values.dtype)[..., None]
    count = jnp.sum(weight, axis=1)
    return jnp.sum(values * weight, axis=1) / jnp.maximum(count, 1.0)


def masked_max(values: jnp.ndarray, mask: jnp.ndarray) -> jnp.ndarray:
    """Max over axis 1 of `values` [N, k, F] where `mask` [N, k] is True; zeros where none is."""
    m = mask[..., None]
    top = jnp.max(jnp.where(m, values, -jnp.inf), axis=1)
    return jnp.where(jnp.any(m, axis=1), top, 0.0).astype(values.dtype)
