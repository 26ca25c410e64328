"""Node and edge features (float32), scaled to O(1) as in HEP.TrkX.

Node: r / 1000 mm, phi / pi, z / 1000 mm; optional eta, cell_count (cells per hit / 10),
cell_value (summed cell charge) and cell_angle_u / cell_angle_v (incidence angles across and along
the sensor from the cluster's extent, in units of pi / 2; gnntrack.detector.cells).
Edge (sender -> receiver): dr / 1000 mm, dphi / pi (wrapped to [-pi, pi)), dz / 1000 mm,
dR = sqrt(deta^2 + dphi^2), phi_slope = dphi / dr in rad/m.
"""

from __future__ import annotations

import numpy as np

from gnntrack.detector.cells import SHAPE_FEATURES, cluster_shape
from gnntrack.errors import InputError
from gnntrack.graphs.types import R_SCALE_MM, Z_SCALE_MM

CELL_COUNT_SCALE = 10.0


def wrap_phi(phi: np.ndarray) -> np.ndarray:
    """Angles wrapped to [-pi, pi)."""
    phi = np.asarray(phi)
    # Differences of two angles lie in (-2pi, 2pi): two selects are cheaper than a float modulo.
    out = np.where(phi >= np.pi, phi - 2 * np.pi, np.where(phi < -np.pi, phi + 2 * np.pi, phi))
    if out.size and (out.min() < -np.pi or out.max() >= np.pi):
        out = (phi + np.pi) % (2 * np.pi) - np.pi
    return out


def node_features(names, r, phi, z, eta, cells: dict | None = None) -> np.ndarray:
    """float32 [N, len(names)]. `cells` maps the cell features asked for to [N] arrays."""
    columns = []
    for name in names:
        if name == "r":
            columns.append(r / R_SCALE_MM)
        elif name == "phi":
            columns.append(phi / np.pi)
        elif name == "z":
            columns.append(z / Z_SCALE_MM)
        elif name == "eta":
            columns.append(eta)
        elif name in SHAPE_FEATURES:
            if cells is None:
                raise InputError(f"node feature {name!r} needs the event's cells table, which is missing")
            columns.append(cells[name] / (CELL_COUNT_SCALE if name == "cell_count" else 1.0))
        else:
            raise InputError(f"unknown node feature {name!r}")
    return np.stack(columns, axis=1).astype(np.float32).reshape(len(r), len(columns))


def edge_features(names, senders, receivers, r, phi, z, eta) -> np.ndarray:
    """float32 [E, len(names)] for edges senders -> receivers."""
    # float32 gathers: the inputs (TrackML x, y, z) are float32, and this halves memory traffic.
    r, phi, z, eta = (np.asarray(v, np.float32) for v in (r, phi, z, eta))
    dr = r[receivers] - r[senders]
    dphi = wrap_phi(phi[receivers] - phi[senders]).astype(np.float32)
    columns = []
    for name in names:
        if name == "dr":
            columns.append(dr * np.float32(1 / R_SCALE_MM))
        elif name == "dphi":
            columns.append(dphi * np.float32(1 / np.pi))
        elif name == "dz":
            columns.append((z[receivers] - z[senders]) * np.float32(1 / Z_SCALE_MM))
        elif name == "dR":
            columns.append(np.hypot(eta[receivers] - eta[senders], dphi))
        elif name == "phi_slope":
            safe = np.where(np.abs(dr) > 1e-6, dr, np.float32(1e-6))
            columns.append(np.float32(1000.0) * dphi / safe)
        else:
            raise InputError(f"unknown edge feature {name!r}")
    out = np.empty((len(senders), len(columns)), np.float32)
    for k, col in enumerate(columns):
        out[:, k] = col
    return out


def cell_features(cells, hit_id: np.ndarray, volume_id: np.ndarray, names, source: str = "cells") -> dict:
    """The cell features `names` (in that order) of the hits `hit_id` [N], float64 [N] each
    (gnntrack.detector.cells.cluster_shape; 0 for hits without cells)."""
    # the angles need a sensor description of each hit's volume, count and charge do not (so
    # those two work on any detector's cells)
    angles = any(n.startswith("cell_angle") for n in names)
    shape = cluster_shape(cells, hit_id, volume_id if angles else None, source)
    return {n: shape[n] for n in names}
