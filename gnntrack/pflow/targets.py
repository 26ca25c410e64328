"""Per-element targets, assigned as the MLPF datasets do.

Generator particles, in decreasing energy, each take one element: their best unused track (a
track belongs to the one particle that made it), else the unused cluster they left most energy
in. A particle left without an element (all its clusters taken, or none reconstructed) is merged
into the particle that owns the cluster it left most energy in: its four-momentum is added to
that particle's target. Elements that no particle takes are class 'none'.
Only visible particles take part (`visible`): those that made a track or left at least
VISIBLE_CALO_FRACTION of their energy in clusters, with more than VISIBLE_MIN_ENERGY_GEV, as the
MLPF datasets require; the others (neutrinos, particles outside the acceptance, soft ones whose
deposits are noise in someone else's cluster) are not targets.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.sparse

from gnntrack.pflow.types import TARGET_COLUMNS

VISIBLE_MIN_ENERGY_GEV = 0.01
VISIBLE_CALO_FRACTION = 0.1


def visible(energy: np.ndarray, candidate: np.ndarray, track_particle: np.ndarray,
            cluster_energy: scipy.sparse.csr_matrix) -> np.ndarray:
    """bool [M]: candidates (e.g. not neutrinos) above VISIBLE_MIN_ENERGY_GEV that made a track
    (track_particle int [T]) or left VISIBLE_CALO_FRACTION of their energy [M] in clusters
    (cluster_energy sparse [M, K])."""
    tracked = np.zeros(len(energy), bool)
    tracked[track_particle] = True
    in_calo = np.asarray(cluster_energy.sum(axis=1)).ravel() > VISIBLE_CALO_FRACTION * energy
    return candidate & (energy > VISIBLE_MIN_ENERGY_GEV) & (tracked | in_calo)


@dataclasses.dataclass
class Assignment:
    """owner: int64 [N] generator particle owning each element, -1 for none;
    p4: float64 [N, 4] the owner's four-momentum plus those merged into it (zero for none)."""

    owner: np.ndarray
    p4: np.ndarray


def assign_elements(energy: np.ndarray, p4: np.ndarray, eligible: np.ndarray, track_particle: np.ndarray,
                    cluster_energy: scipy.sparse.csr_matrix) -> Assignment:
    """Assigns generator particles to elements (tracks first, then clusters).

    Args:
      energy: float [M] particle energies (the order of choosing).
      p4: float [M, 4] particle four-momenta (px, py, pz, E).
      eligible: bool [M] particles that may own an element (False for neutrinos).
      track_particle: int [T] the particle of each track (elements 0 ... T-1).
      cluster_energy: sparse [M, K] energy each particle left in each cluster (elements T ... T+K-1).
    """
    n_tracks, n_clusters = len(track_particle), cluster_energy.shape[1]
    owner = np.full(n_tracks + n_clusters, -1, np.int64)
    has_element = np.zeros(len(energy), bool)
    take = eligible[track_particle]
    owner[:n_tracks][take] = track_particle[take]
    has_element[track_particle[take]] = True

    # each particle's clusters by decreasing deposit, as one flat list per row
    coo = cluster_energy.tocoo()
    order = np.lexsort((-coo.data, coo.row))
    rows, cols = coo.row[order], coo.col[order]
    start = np.searchsorted(rows, np.arange(len(energy) + 1))
    cols_list, start_list = cols.tolist(), start.tolist()
    candidates = np.flatnonzero(eligible & ~has_element & (start[1:] > start[:-1]))
    candidates = candidates[np.argsort(-energy[candidates], kind="stable")]
    used = bytearray(n_clusters)
    cluster_owner = owner[n_tracks:]
    for particle in candidates.tolist():  # sequential by nature: the order decides who takes what
        for k in range(start_list[particle], start_list[particle + 1]):
            c = cols_list[k]
            if not used[c]:
                used[c] = 1
                cluster_owner[c] = particle
                has_element[particle] = True
                break

    target = np.zeros((len(owner), 4))
    owned = owner >= 0
    target[owned] = p4[owner[owned]]
    leftovers = np.flatnonzero(eligible & ~has_element & (start[1:] > start[:-1]))
    best = cols[start[leftovers]]  # the cluster each leftover left most energy in (all are taken)
    np.add.at(target, n_tracks + best, p4[leftovers])
    return Assignment(owner=owner, p4=target)


def target_rows(assignment: Assignment, particle_class: np.ndarray, charge: np.ndarray) -> np.ndarray:
    """float32 [N, len(TARGET_COLUMNS)] from an assignment and the particles' class and charge."""
    owner, p4 = assignment.owner, assignment.p4
    owned = owner >= 0
    rows = np.zeros((len(owner), len(TARGET_COLUMNS)), np.float32)
    rows[owned, 0] = particle_class[owner[owned]]
    rows[owned, 1] = charge[owner[owned]]
    rows[:, 2:] = np.where(owned[:, None], kinematic_columns(p4), 0.0)
    return rows


def kinematic_columns(p4: np.ndarray) -> np.ndarray:
    """float64 [M, 5]: pt, eta, sin phi, cos phi, energy of four-momenta p4 [M, 4]
    (the kinematic part of TARGET_COLUMNS; phi = 0 for pt = 0)."""
    pt = np.hypot(p4[:, 0], p4[:, 1])
    safe = np.maximum(pt, 1e-9)
    eta = np.arcsinh(p4[:, 2] / safe)
    sin_phi = np.where(pt > 0, p4[:, 1] / safe, 0.0)
    cos_phi = np.where(pt > 0, p4[:, 0] / safe, 1.0)
    return np.stack([pt, eta, sin_phi, cos_phi, p4[:, 3]], axis=1)
