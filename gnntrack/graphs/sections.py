"""Splitting an event graph into n_phi x n_eta sections with overlap (HEP.TrkX style).

Each hit has one *home* section (its phi / eta cell). Section k holds
  * every hit within its cell widened by section_overlap_phi (rad) and section_overlap_eta, and
  * the outer end of every edge whose inner end is at home in k,
and every event-graph edge between two of its hits. So each edge of the event graph is in at
least one section (that of its sender), whatever the overlap; edges near a border are in several.
With rotate_sections the node phi feature is measured from the section's centre, so that all
sections look alike to a model (edge features are rotation invariant).
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
