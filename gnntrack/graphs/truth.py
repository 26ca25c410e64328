"""Truth for hit graphs: order each particle's hits along its path, find the true segments.

Definition (used for labels and for the efficiency denominator):
  * a particle's hits are ordered along its trajectory by `path_keys` (not by radius);
  * consecutive hits on the same layer form one *layer group* (module overlaps and other
    duplicates: two hits of one particle on one layer);
  * the true segments are all hit pairs between consecutive layer groups of the same particle
    (so with a duplicate on layer B, both A-B and A-B' and both B-C and B'-C are true);
    hits of one group are never paired with each other (no intra-layer edges are built).
  * noise (particle_id 0) has no true segments.
With `remove_duplicates` the builder keeps only the first hit of each (particle, layer) before
this, so every layer group has one hit.
"""

from __future__ import annotations

import numpy as np


def path_keys(tx, ty, tz, tpx, tpy, vx, vy, vz) -> tuple[np.ndarray, np.ndarray]:
    """Sort keys that order a particle's hits along its helix, from truth.

    A helix leaving its vertex first moves away from it in the transverse plane and, after half a
    turn, comes back. The sign of d_T . p_T (transverse displacement from the vertex dotted with
    the momentum at the hit; = R pT sin(turning angle)) tells which half the hit is on: on the
    outgoing half hits are ordered by their 3-D distance from the vertex, on the returning half
    by decreasing transverse distance. This needs neither the field nor the charge. Hits beyond
    one full turn (very low-pT loopers) are not ordered correctly.

    Args: arrays [N] of truth hit positions (mm) and momenta (GeV), and the particle's vertex
      per hit (mm).
    Returns:
      half: int8 [N], 0 outgoing, 1 returning; key: float64 [N], ascending along the path within
      a half.
    """
    dx = np.asarray(tx, np.float64) - vx
    dy = np.asarray(ty, np.float64) - vy
    dz = np.asarray(tz, np.float64) - vz
    d_t = np.hypot(dx, dy)
    returning = (dx * tpx + dy * tpy) < 0
    key = np.where(returning, -d_t, np.sqrt(d_t * d_t + dz * dz))
    return returning.astype(np.int8), key


def true_pairs(particle_id: np.ndarray, layer: np.ndarray, half: np.ndarray, key: np.ndarray
               ) -> np.ndarray:
    """All true segments among N nodes.

    Args:
      particle_id: int64 [N] (0 = noise, < 0 = unknown: both ignored); layer: int [N];
      half, key: [N] from `path_keys`.
    Returns:
      int64 [T, 2] node indices (earlier, later along the path), grouped by particle.
    """
    nodes = np.flatnonzero(particle_id > 0)
    if nodes.size < 2:
        return np.zeros((0, 2), np.int64)
    order = nodes[np.lexsort((key[nodes], half[nodes], particle_id[nodes]))]
    pid = particle_id[order]
    lay = layer[order]
    new_run = np.r_[True, (pid[1:] != pid[:-1]) | (lay[1:] != lay[:-1])]
    run_start = np.flatnonzero(new_run)
    run_len = np.diff(np.r_[run_start, order.size])
    run_pid = pid[run_start]
    a_run = np.flatnonzero(run_pid[:-1] == run_pid[1:])
    b_run = a_run + 1
    na, nb = run_len[a_run], run_len[b_run]
    n_pairs = na * nb
    pair_of = np.repeat(np.arange(a_run.size), n_pairs)
    within = np.arange(n_pairs.sum()) - np.repeat(np.cumsum(n_pairs) - n_pairs, n_pairs)
    ia = run_start[a_run][pair_of] + within // nb[pair_of]
    ib = run_start[b_run][pair_of] + within % nb[pair_of]
    return np.stack([order[ia], order[ib]], axis=1).astype(np.int64)


def pair_keys(a: np.ndarray, b: np.ndarray, n_nodes: int) -> np.ndarray:
    """int64 keys of unordered node pairs: min * n + max."""
    a = np.asarray(a, np.int64)
    b = np.asarray(b, np.int64)
    return np.minimum(a, b) * n_nodes + np.maximum(a, b)


def label_edges(senders: np.ndarray, receivers: np.ndarray, pairs: np.ndarray, n_nodes: int,
                particle_id: np.ndarray | None = None) -> np.ndarray:
    """bool [E]: edge joins a true segment (in either orientation).

    With `particle_id` [N], only edges between two hits of one particle are looked up (a cheap
    pre-filter: most edges are fakes between different particles).
    """
    true_keys = sorted_unique(pair_keys(pairs[:, 0], pairs[:, 1], n_nodes))
    if particle_id is None:
        return _isin_sorted(pair_keys(senders, receivers, n_nodes), true_keys)
    same = np.flatnonzero(particle_id[senders] == particle_id[receivers])
    y = np.zeros(len(senders), bool)
    y[same] = _isin_sorted(pair_keys(senders[same], receivers[same], n_nodes), true_keys)
    return y


def found_pairs(pairs: np.ndarray, senders: np.ndarray, receivers: np.ndarray, n_nodes: int
                ) -> np.ndarray:
    """bool [T]: true segment is present among the edges."""
    edge_keys = sorted_unique(pair_keys(senders, receivers, n_nodes))
    return _isin_sorted(pair_keys(pairs[:, 0], pairs[:, 1], n_nodes), edge_keys)


def sorted_unique(a: np.ndarray) -> np.ndarray:
    """Sorted unique values of a 1-D array (sort + mask: much faster than np.unique's hash path
    on large int64 arrays with numpy 2.x)."""
    a = np.sort(np.asarray(a).ravel())
    return a[np.r_[True, a[1:] != a[:-1]]] if a.size else a


def _isin_sorted(query: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    if sorted_keys.size == 0:
        return np.zeros(query.shape, bool)
    pos = np.clip(np.searchsorted(sorted_keys, query), 0, sorted_keys.size - 1)
    return sorted_keys[pos] == query
