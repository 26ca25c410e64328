"""Graphs of a jraph batch as dense per-graph arrays, and kNN inside each graph in that form.

    x, mask = to_dense(graph.nodes, graph.n_node, max_nodes=80)   # [G, P, F], [G, P]
    nbr, nbr_mask = dense_knn(x[..., :2], mask, k=16)              # [G, P, k], [G, P, k]
    h = from_dense(x, graph.n_node, graph.nodes.shape[0])          # back to [N, F]

Small graphs of bounded size (jets: up to P constituents) are cheaper as a [G, P, F] block than
as a flat edge list: the kNN distances are one [P, P] matrix per graph instead of the batch's
[N, N], and every layer is a batched matmul. The i-th node of graph g goes to [g, i]; nodes past
`max_nodes` are dropped, as are nodes outside `node_mask` (e.g. jraph's padding nodes) and
nodes past sum(n_node). jraph's padding graph gets a row like any other graph: its outputs are
masked by the task (`graph_mask`), and it never mixes with a real graph.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from gnntrack.nn.layers.knn import node_graph_index


def _offsets(n_node: jnp.ndarray) -> jnp.ndarray:
    """int32 [G]: index of each graph's first node."""
    n_node = jnp.asarray(n_node, jnp.int32)
    return jnp.cumsum(n_node) - n_node


def to_dense(nodes: jnp.ndarray, n_node: jnp.ndarray, max_nodes: int,
             node_mask: jnp.ndarray | None = None) -> tuple[jnp.ndarray, jnp.ndarray]:
    """(x float [G, P, F], mask bool [G, P]) from nodes [N, F] and n_node int [G]; P = max_nodes.

    A gather (its gradient a scatter-add back onto `nodes`); zeros where mask is False.
    node_mask: optional bool [N]; False nodes are left out (their slot is masked, not refilled).
    """
    nodes = jnp.asarray(nodes)
    n = nodes.shape[0]
    n_node = jnp.asarray(n_node, jnp.int32)
    slot = jnp.arange(max_nodes, dtype=jnp.int32)
    index = _offsets(n_node)[:, None] + slot[None, :]  # [G, P]
    mask = (slot[None, :] < n_node[:, None]) & (index < n)
    safe = jnp.where(mask, index, 0)
    if node_mask is not None:
        mask = mask & jnp.asarray(node_mask, bool)[safe]
    x = jnp.take(nodes, safe, axis=0) if n else jnp.zeros(safe.shape + nodes.shape[1:], nodes.dtype)
    return jnp.where(mask[..., None], x, 0).astype(nodes.dtype), mask


def from_dense(x: jnp.ndarray, n_node: jnp.ndarray, num_nodes: int) -> jnp.ndarray:
    """float [N, F] (N = num_nodes) from x [G, P, F]: node i of graph g reads [g, i]; nodes past
    P (or past sum(n_node)) get zeros. Inverse of `to_dense` on the nodes it keeps."""
    g = node_graph_index(jnp.asarray(n_node, jnp.int32), num_nodes)
    pos = jnp.arange(num_nodes, dtype=jnp.int32) - _offsets(n_node)[g]
    keep = (pos < x.shape[1]) & (jnp.arange(num_nodes) < jnp.sum(n_node))
    out = x[g, jnp.where(keep, pos, 0)]
    return jnp.where(keep[:, None], out, 0).astype(x.dtype)


def dense_knn(coords: jnp.ndarray, mask: jnp.ndarray, k: int) -> tuple[jnp.ndarray, jnp.ndarray]:
    """The k nearest neighbours of every slot within its own graph (Euclidean in `coords`).

    Args:
      coords: float [G, P, D]; no gradient flows through the choice of neighbours.
      mask: bool [G, P], real slots. A masked slot is nobody's neighbour, and never its own.
      k: neighbours per slot (static).
    Returns:
      (index int32 [G, P, k] into axis 1, nearest first; valid bool [G, P, k]). Slots with no
      candidate left (a graph with <= k real nodes, or a masked slot's own row) point at the
      slot itself with valid False.
    """
    x = jax.lax.stop_gradient(jnp.asarray(coords, jnp.float32))
    p = x.shape[1]
    sq = jnp.sum(x * x, axis=-1)
    d2 = sq[:, :, None] + sq[:, None, :] - 2.0 * jnp.einsum(
        "gid,gjd->gij", x, x, precision=jax.lax.Precision.HIGHEST)
    eye = jnp.eye(p, dtype=bool)
    ok = mask[:, :, None] & mask[:, None, :] & ~eye[None]
    kk = min(k, p)
    neg, index = jax.lax.top_k(jnp.where(ok, -d2, -jnp.inf), kk)
    valid = neg > -jnp.inf
    own = jnp.broadcast_to(jnp.arange(p, dtype=jnp.int32)[None, :, None], index.shape)
    index = jnp.where(valid, index.astype(jnp.int32), own)
    if kk < k:  # fewer slots than k: the missing neighbours are masked self-references
        pad = jnp.broadcast_to(jnp.arange(p, dtype=jnp.int32)[None, :, None], index.shape[:2] + (k - kk,))
        index = jnp.concatenate([index, pad], axis=-1)
        valid = jnp.concatenate([valid, jnp.zeros(pad.shape, bool)], axis=-1)
    return index, valid


def gather_neighbours(x: jnp.ndarray, index: jnp.ndarray) -> jnp.ndarray:
    """float [G, P, k, F]: x [G, P, F] at each slot's neighbours (index int32 [G, P, k])."""
    g, p, k = index.shape
    flat = jnp.take_along_axis(x, index.reshape(g, p * k, 1), axis=1)
    return flat.reshape(g, p, k, x.shape[-1])


def masked_pool_mean(x: jnp.ndarray, mask: jnp.ndarray) -> jnp.ndarray:
    """float [G, F]: mean over the real slots of x [G, P, F] (zeros for a graph without any)."""
    w = mask.astype(x.dtype)[..., None]
    return jnp.sum(x * w, axis=1) / jnp.maximum(jnp.sum(w, axis=1), 1.0)
