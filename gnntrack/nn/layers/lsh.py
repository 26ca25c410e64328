"""GNN-LSH: message passing inside bins of nearby elements (MLPF), O(N · bin_size), static shapes.

    layer = LSHMessagePassing(features=64, distance_dim=16, bin_size=128, n_buckets=16)
    h = layer(x, n_node, node_mask)            # x float [N, F] -> h [N, features]
    h = layer(x, n_node, node_mask, hash_points=p)   # bins from fixed points p [N, P] instead of z

Per call, for every graph of a jraph batch on its own:
  1. z = Dense(x) in float32: each element's point in a learned distance space [N, distance_dim].
  2. Angular LSH: bucket = argmax([zR, -zR]) with a fixed random rotation R [distance_dim,
     n_buckets / 2] drawn from a fixed PRNG key (not a parameter, never trained).
  3. Sort by (graph, bucket, z·u) -- u a fixed random direction -- and cut each graph's sorted
     run into chunks of `bin_size` (a graph starts a new chunk, so events never share a bin; the
     last chunk of a graph is filled up with empty slots).
  4. Inside each chunk: adjacency A_ij = exp(-|z_i - z_j|²) between real elements, and
     `n_convs` gated graph convolutions on it.
  5. Scatter back to the original element order.
`dense=True` is the quadratic reference: one bin per batch in the original order, A over all
pairs of the same graph.

Why these choices:
  * The bucket count is a fixed key, not N / bin_size as in MLPF's padded events: the hash then
    does not depend on how far the batch was padded, so padding never moves a real element to
    another bin.
  * The tie-break z·u orders the elements of a bucket along one direction, so a bucket larger
    than a chunk is cut between neighbours in that direction, and the bins depend on the
    elements' values only (relabelling the elements relabels the outputs).
  * Hashing and distances are float32 (the published code forces this too): bf16 rounding of
    z would move elements between buckets and flatten exp(-d²).
  * Masked and padding elements get no slot: they are nobody's neighbour and their outputs are 0.
  * `hash_points` (e.g. each element's direction) bins by fixed coordinates while the kernel
    stays in the learned space: hashing a freshly initialised z can keep apart exactly the
    pairs that must meet (a track and its cluster differ most in their type features), and no
    gradient reaches a pair that never shares a bin, so the learned space cannot pull them in.

Slots: n_bins = ceil(N / bin_size) + G - 1 chunks of bin_size (G graphs in the batch, each
rounding its run up to whole chunks), so memory and time are O(N · bin_size) for one event.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from gnntrack.nn.layers import get_activation, gather_rows
from gnntrack.nn.layers.knn import node_graph_index


class Bins(NamedTuple):
    """Which element sits in which slot of which bin.

    slot_element  int32 [n_bins, S]  element in each slot; N (one past the last) for an empty slot
    slot_graph    int32 [n_bins, S]  graph of each slot's element; -1 for an empty slot
    element_slot  int32 [N]          flat slot of each element; n_bins * S for one without a slot
    """

    slot_element: jnp.ndarray
    slot_graph: jnp.ndarray
    element_slot: jnp.ndarray


def real_elements(n_node: jnp.ndarray, num: int, node_mask: jnp.ndarray | None = None):
    """(graph int32 [num], real bool [num]): each element's graph, and whether it is a real element
    (inside sum(n_node) and node_mask)."""
    graph = node_graph_index(n_node, num)
    real = jnp.arange(num) < jnp.sum(n_node)
    if node_mask is not None:
        real = real & node_mask.astype(bool)
    return graph, real


def lsh_hash(z: jnp.ndarray, n_buckets: int, seed: int = 0) -> tuple[jnp.ndarray, jnp.ndarray]:
    """(bucket int32 [N] in [0, n_buckets), tie-break float32 [N]) of points z [N, D]:
    argmax over [zR, -zR] and z·u, with R [D, n_buckets/2] and u [D] from PRNG key `seed`."""
    if n_buckets < 2 or n_buckets % 2:
        raise ValueError(f"n_buckets must be an even number >= 2, got {n_buckets}")
    z = jax.lax.stop_gradient(z.astype(jnp.float32))
    key_r, key_u = jax.random.split(jax.random.key(seed))
    rotation = jax.random.normal(key_r, (z.shape[-1], n_buckets // 2), jnp.float32)
    direction = jax.random.normal(key_u, (z.shape[-1],), jnp.float32)
    proj = z @ rotation
    bucket = jnp.argmax(jnp.concatenate([proj, -proj], axis=-1), axis=-1).astype(jnp.int32)
    return bucket, z @ direction


def lsh_bins(z: jnp.ndarray, n_node: jnp.ndarray, bin_size: int, n_buckets: int, *,
             node_mask: jnp.ndarray | None = None, seed: int = 0) -> Bins:
    """Bins of `bin_size` slots from the LSH of z float [N, D] (see the module docstring).

    Every graph's real elements fill whole chunks of their own, in (bucket, z·u) order.
    """
    n, n_graph = z.shape[0], n_node.shape[0]
    size = max(1, min(bin_size, n))
    n_bins = -(-n // size) + n_graph - 1
    graph, real = real_elements(n_node, n, node_mask)
    bucket, tie = lsh_hash(z, n_buckets, seed)
    primary = jnp.where(real, graph * n_buckets + bucket, n_graph * n_buckets)
    _, _, order = jax.lax.sort((primary, tie, jnp.arange(n, dtype=jnp.int32)), num_keys=2)
    # rank of each sorted element inside its graph's run -> slot in that graph's first chunk on
    counts = jax.ops.segment_sum(real.astype(jnp.int32), graph, n_graph)
    first = jnp.cumsum(counts) - counts
    chunked = -(-counts // size) * size
    first_slot = jnp.cumsum(chunked) - chunked
    g_sorted, real_sorted = graph[order], real[order]
    rank = jnp.arange(n, dtype=jnp.int32) - first[g_sorted]
    slot = jnp.where(real_sorted, first_slot[g_sorted] + rank, n_bins * size).astype(jnp.int32)
    slot_element = jnp.full(n_bins * size, n, jnp.int32).at[slot].set(order, mode="drop")
    slot_graph = jnp.full(n_bins * size, -1, jnp.int32).at[slot].set(g_sorted, mode="drop")
    element_slot = jnp.full(n, n_bins * size, jnp.int32).at[order].set(slot)
    return Bins(slot_element.reshape(n_bins, size), slot_graph.reshape(n_bins, size), element_slot)


def dense_bins(n_node: jnp.ndarray, num: int, node_mask: jnp.ndarray | None = None) -> Bins:
    """The quadratic reference: one bin holding all `num` elements in their own order."""
    graph, real = real_elements(n_node, num, node_mask)
    index = jnp.arange(num, dtype=jnp.int32)
    return Bins(index[None], jnp.where(real, graph, -1)[None], jnp.where(real, index, num))


def to_bins(x: jnp.ndarray, bins: Bins) -> jnp.ndarray:
    """Rows of x [N, F] in their slots -> [n_bins, S, F] (zeros in empty slots)."""
    table = jnp.concatenate([x, jnp.zeros((1,) + x.shape[1:], x.dtype)])
    return gather_rows(table, bins.slot_element.reshape(-1)).reshape(bins.slot_element.shape + x.shape[1:])


def from_bins(h: jnp.ndarray, bins: Bins) -> jnp.ndarray:
    """Slot rows h [n_bins, S, F] back to element order -> [N, F] (zeros for slotless elements)."""
    flat = h.reshape((-1,) + h.shape[2:])
    return gather_rows(jnp.concatenate([flat, jnp.zeros((1,) + flat.shape[1:], h.dtype)]), bins.element_slot)


def gaussian_adjacency(z: jnp.ndarray, slot_graph: jnp.ndarray) -> jnp.ndarray:
    """float32 [B, S, S]: exp(-|z_i - z_j|²) for slots i, j of one bin holding elements of the
    same graph, 0 otherwise (empty slots included). z [B, S, D] (computed in float32)."""
    z = z.astype(jnp.float32)
    sq = jnp.sum(z * z, axis=-1)
    d2 = sq[..., :, None] + sq[..., None, :] - 2.0 * jnp.einsum("bid,bjd->bij", z, z)
    same = (slot_graph[..., :, None] == slot_graph[..., None, :]) & (slot_graph[..., :, None] >= 0)
    return jnp.where(same, jnp.exp(-jnp.maximum(d2, 0.0)), 0.0)


class GatedGraphConv(nn.Module):
    """MLPF's gated convolution on a dense adjacency (per bin):

        out = act(g · D^-½ A D^-½ (x W_hom) + (1 - g) · x W_het),  g = sigmoid(x W_gate + b)

    x [B, S, F] (compute dtype), adj float32 [B, S, S] -> [B, S, features]. D is A's row sum
    (the diagonal exp(0) = 1 makes it >= 1 for every real element)."""

    features: int
    activation: str = "gelu"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jnp.ndarray, adj: jnp.ndarray) -> jnp.ndarray:
        dense = dict(dtype=self.dtype, param_dtype=jnp.float32)
        degree = jnp.sum(adj, axis=-1)
        norm = jnp.where(degree > 0, jax.lax.rsqrt(jnp.maximum(degree, 1e-12)), 0.0)
        a = (norm[..., :, None] * adj * norm[..., None, :]).astype(self.dtype)
        hom = jnp.einsum("bij,bjf->bif", a, nn.Dense(self.features, use_bias=False, name="hom", **dense)(x))
        het = nn.Dense(self.features, name="het", **dense)(x)
        gate = jax.nn.sigmoid(nn.Dense(self.features, name="gate", **dense)(x))
        return get_activation(self.activation)(gate * hom + (1 - gate) * het)


class LSHMessagePassing(nn.Module):
    """See the module docstring. x float [N, F], n_node int [G], node_mask bool [N] or None,
    hash_points float [N, P] or None (hash z) -> [N, features] in `dtype` (zeros for masked and
    padding-beyond-n_node elements)."""

    features: int = 64
    distance_dim: int = 16
    bin_size: int = 128
    n_buckets: int = 16
    n_convs: int = 2
    dense: bool = False
    activation: str = "gelu"
    dtype: Any = jnp.float32
    seed: int = 0

    @nn.compact
    def __call__(self, x: jnp.ndarray, n_node: jnp.ndarray, node_mask: jnp.ndarray | None = None,
                 hash_points: jnp.ndarray | None = None):
        z = nn.Dense(self.distance_dim, dtype=jnp.float32, param_dtype=jnp.float32,
                     name="distance")(x.astype(jnp.float32))
        if self.dense:
            bins = dense_bins(n_node, x.shape[0], node_mask)
        else:
            bins = lsh_bins(z if hash_points is None else hash_points, n_node, self.bin_size, self.n_buckets,
                            node_mask=node_mask, seed=self.seed)
        adj = gaussian_adjacency(to_bins(z, bins), bins.slot_graph)
        h = to_bins(x.astype(self.dtype), bins)
        for i in range(self.n_convs):
            h = GatedGraphConv(self.features, self.activation, self.dtype, name=f"conv_{i}")(h, adj)
        return from_bins(h, bins)
