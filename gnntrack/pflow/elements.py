"""Element feature rows (ELEMENT_FEATURES) of tracks and calorimeter clusters.

Elements are ordered tracks first, then ECAL clusters, then HCAL clusters. A track's position is
where its helix crosses the ECAL surface; a cluster's is its centre on its calorimeter's surface
(metres). A column a type lacks is zero.
"""

from __future__ import annotations

import numpy as np

from gnntrack.pflow.calo import Clusters
from gnntrack.pflow.tracks import Tracks
from gnntrack.pflow.types import ELEMENT_FEATURES

COLUMN = {name: i for i, name in enumerate(ELEMENT_FEATURES)}


def track_rows(tracks: Tracks) -> np.ndarray:
    """float32 [T, len(ELEMENT_FEATURES)]."""
    rows = np.zeros((len(tracks), len(ELEMENT_FEATURES)), np.float32)
    columns = {"is_track": 1.0, "pt_or_et": tracks.pt, "eta": tracks.eta, "sin_phi": np.sin(tracks.phi),
               "cos_phi": np.cos(tracks.phi), "energy_or_p": tracks.p, "track_chi2": tracks.chi2,
               "track_charge": tracks.charge, "position_x": tracks.xyz[:, 0], "position_y": tracks.xyz[:, 1],
               "position_z": tracks.xyz[:, 2]}
    for name, value in columns.items():
        rows[:, COLUMN[name]] = value
    return rows


def cluster_rows(clusters: Clusters, *, ecal: bool) -> np.ndarray:
    """float32 [K, len(ELEMENT_FEATURES)] of one calorimeter's clusters; E_T = E / cosh(eta)."""
    rows = np.zeros((len(clusters), len(ELEMENT_FEATURES)), np.float32)
    columns = {"is_cluster": 1.0, "pt_or_et": clusters.energy / np.cosh(clusters.eta), "eta": clusters.eta,
               "sin_phi": np.sin(clusters.phi), "cos_phi": np.cos(clusters.phi), "energy_or_p": clusters.energy,
               "cluster_e_ecal" if ecal else "cluster_e_hcal": clusters.energy,
               "cluster_n_cells": clusters.n_cells, "cluster_width_eta": clusters.width_eta,
               "cluster_width_phi": clusters.width_phi, "position_x": clusters.xyz[:, 0],
               "position_y": clusters.xyz[:, 1], "position_z": clusters.xyz[:, 2]}
    for name, value in columns.items():
        rows[:, COLUMN[name]] = value
    return rows
