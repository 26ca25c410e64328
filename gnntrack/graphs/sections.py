"""Splitting an event graph into n_phi x n_eta sections with overlap (HEP.TrkX style).

Each hit has one *home* section (its phi / eta cell). Section k holds
  * every hit within its cell widened by section_overlap_phi (rad) and section_overlap_eta, and
  * the outer end of every edge whose inner end is at home in k,
and every event-graph edge between two of its hits. So each edge of the event graph is in at
least one section (that of its sender), whatever the overlap; edges near a border are in several.
With rotate_sections the node phi feature is measured from the section's centre, so that all
sections look alike to a model (edge features are rotation invariant).

Exact sections (`exact_sections`) instead cut the event along a coordinate that is constant along
a track into K slices of equal node count. Section k's *core* edges are those whose sender is at
home in slice k (each edge is core in exactly one section); the section holds every node within
n_hops edges (either direction) of a core edge's end and every edge between two of its nodes.
A message-passing model with n_hops iterations of per-node sums over a node's own edges then
gives each core edge the score it has in the whole graph: a node d hops from a core edge has all
its edges in the section when d < n_hops, so its state is exact for n_hops - d iterations. The
loss counts core edges only (HitGraph.edge_mask).
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from gnntrack.graphs.features import wrap_phi


def section_index(phi: np.ndarray, eta: np.ndarray, n_phi: int, n_eta: int, eta_max: float
                  ) -> np.ndarray:
    """int64 [N] home section = phi_cell * n_eta + eta_cell; eta beyond +-eta_max is clipped."""
    phi_cell = np.clip(((np.asarray(phi) + np.pi) / (2 * np.pi) * n_phi).astype(np.int64), 0, n_phi - 1)
    eta_cell = np.clip(((np.asarray(eta) + eta_max) / (2 * eta_max) * n_eta).astype(np.int64), 0, n_eta - 1)
    return phi_cell * n_eta + eta_cell


def split_sections(nodes, senders: np.ndarray, receivers: np.ndarray, y: np.ndarray, config
                   ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]]:
    """Yields per section: (node index [n] into `nodes`, senders [e], receivers [e] renumbered
    into the section, y [e], phi centre of the section)."""
    n_phi, n_eta = int(config.n_phi_sections), int(config.n_eta_sections)
    eta_max = float(config.section_eta_max)
    home = section_index(nodes.phi, nodes.eta, n_phi, n_eta, eta_max)
    d_phi, d_eta = 2 * np.pi / n_phi, 2 * eta_max / n_eta
    eta_clipped = np.clip(nodes.eta, -eta_max, eta_max)
    n = len(nodes)
    for k in range(n_phi * n_eta):
        i_phi, i_eta = divmod(k, n_eta)
        phi_center = -np.pi + (i_phi + 0.5) * d_phi
        eta_lo = -eta_max + i_eta * d_eta
        in_window = np.abs(wrap_phi(nodes.phi - phi_center)) <= 0.5 * d_phi + config.section_overlap_phi
        in_window &= (eta_clipped >= eta_lo - config.section_overlap_eta)
        in_window &= (eta_clipped <= eta_lo + d_eta + config.section_overlap_eta)
        member = in_window | (home == k)
        member[receivers[home[senders] == k]] = True
        idx = np.flatnonzero(member)
        new_id = np.full(n, -1, np.int64)
        new_id[idx] = np.arange(idx.size)
        keep = member[senders] & member[receivers]
        yield (idx, new_id[senders[keep]].astype(np.int32), new_id[receivers[keep]].astype(np.int32),
               y[keep], float(phi_center))


def quantile_sections(coordinate: np.ndarray, n_sections: int) -> np.ndarray:
    """int64 [N] home slice of each node: K slices of (nearly) equal node count along `coordinate`."""
    coordinate = np.asarray(coordinate, np.float64)
    if coordinate.size == 0:
        return np.zeros(0, np.int64)
    cuts = np.quantile(coordinate, np.arange(1, n_sections) / n_sections)
    return np.searchsorted(cuts, coordinate, "right").astype(np.int64)


def random_sections(n_nodes: int, n_sections: int, event_id: int) -> np.ndarray:
    """int64 [N] home section of each node drawn at random (sizes differ by at most one), a pure
    function of the event id: GST's random segments."""
    order = np.random.default_rng([int(event_id), n_sections]).permutation(n_nodes)
    home = np.empty(n_nodes, np.int64)
    home[order] = np.arange(n_nodes) % n_sections
    return home


def expand_hops(member: np.ndarray, senders: np.ndarray, receivers: np.ndarray, n_hops: int) -> np.ndarray:
    """bool [N]: `member` grown by n_hops steps along edges in either direction."""
    member = member.copy()
    for _ in range(n_hops):
        grown = member.copy()
        grown[receivers[member[senders]]] = True
        grown[senders[member[receivers]]] = True
        if np.array_equal(grown, member):
            break
        member = grown
    return member


def exact_sections(home: np.ndarray, n_sections: int, senders: np.ndarray, receivers: np.ndarray,
                   n_hops: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Yields per section k (module docstring): node index [n] into the event's nodes, senders and
    receivers [e] renumbered into the section, edge index [e] into the event's edges, and core
    bool [e]. Nodes without edges are in the section of their home slice."""
    n = len(home)
    isolated = np.ones(n, bool)
    isolated[senders] = isolated[receivers] = False
    for k in range(n_sections):
        core_edge = home[senders] == k
        seeds = np.zeros(n, bool)
        seeds[senders[core_edge]] = True
        seeds[receivers[core_edge]] = True
        member = expand_hops(seeds, senders, receivers, n_hops) | (isolated & (home == k))
        idx, s, r, edge_idx = induced_subgraph(member, senders, receivers)
        yield idx, s, r, edge_idx, core_edge[edge_idx]


def induced_subgraph(member: np.ndarray, senders: np.ndarray, receivers: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The subgraph on the nodes `member` (bool [N]) with every edge between two of them: node
    index [n], senders and receivers [e] renumbered into it (int32), edge index [e]."""
    idx = np.flatnonzero(member)
    new_id = np.full(len(member), -1, np.int64)
    new_id[idx] = np.arange(idx.size)
    edge_idx = np.flatnonzero(member[senders] & member[receivers])
    return (idx, new_id[senders[edge_idx]].astype(np.int32), new_id[receivers[edge_idx]].astype(np.int32),
            edge_idx)
