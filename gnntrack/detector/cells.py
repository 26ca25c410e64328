"""Hit clusters ("cells"): simulated from each crossing's direction, and their shape read back.

A particle crossing a sensor of thickness t along the unit direction d leaves charge along a
segment whose projection on the sensor spans t * d_u / d_w across and t * d_v / d_w along it
(local frame at the hit: u = the r·phi direction, v = z on barrel cylinders and r on disks,
w = the surface normal, radial or along z). The pixels or strips the segment passes through are
the hit's cells (TrackML's cells table: hit_id, ch0 across, ch1 along, value). Read back, the
cluster's extent gives the angle of incidence in each plane, (n - 1) * pitch / t ~ |d_u / d_w|
and |d_v / d_w| (n cells across or along), which position alone cannot give: on a barrel pixel
layer |d_v / d_w| ~ |cot theta| of the particle, so a hit carries an estimate of its track's
polar angle (Exa.TrkX's cluster-shape features).

    cells = simulate_cells(rng, volume_id, is_barrel, x, y, z, px, py, pz, u0, v0)  # rows per hit
    shape = cluster_shape(cells_table, hit_id, volume_id)   # dict of float64 [N]

Sensors (pitch across, pitch along, thickness; mm) are given per TrackML volume_id (`SENSORS`):
pixels 50 um x 56 um, short strips 80 um x 1.2 mm, long strips 120 um x 10.8 mm, as in TrackML,
with thicknesses of this simulation's choosing; real TrackML cells read through the same table
(the shape needs only pitch / thickness, and real modules are close to the idealised frame).
Units: mm, GeV.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gnntrack.errors import InputError

# volume_id -> (pitch across = ch0, pitch along = ch1, sensor thickness), mm
_PIXEL, _SHORT, _LONG = (0.05, 0.05638, 0.15), (0.08, 1.2, 0.25), (0.12, 10.8, 0.35)
SENSORS: dict[int, tuple[float, float, float]] = {
    7: _PIXEL, 8: _PIXEL, 9: _PIXEL, 12: _SHORT, 13: _SHORT, 14: _SHORT, 16: _LONG, 17: _LONG, 18: _LONG}
# Grazing crossings: |d_w| is floored here (a 20x longer path than at normal incidence), which
# bounds a cluster's length as a real module's edge does.
MIN_COS_INCIDENCE = 0.05
MAX_SAMPLES = 129          # points sampled along one crossing's segment (odd: one at the centre)
CHARGE_SPREAD = 0.25       # relative r.m.s. of a cluster's total charge (Gamma-distributed)
SHAPE_FEATURES = ("cell_count", "cell_value", "cell_angle_u", "cell_angle_v")


def sensors(volume_id: np.ndarray, source: str = "hits") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pitch_u, pitch_v, thickness) float64 [N] in mm of each hit's volume; InputError naming the
    first volume that has no sensor description."""
    volume_id = np.asarray(volume_id, np.int64)
    known = np.array(sorted(SENSORS), np.int64)
    table = np.array([SENSORS[v] for v in known.tolist()], np.float64)
    pos = np.clip(np.searchsorted(known, volume_id), 0, len(known) - 1)
    bad = known[pos] != volume_id
    if bad.any():
        raise InputError(f"{source}: volume_id {int(volume_id[np.argmax(bad)])} has no sensor description "
                         f"for cell shapes (known TrackML volumes: {known.tolist()})")
    return table[pos, 0], table[pos, 1], table[pos, 2]


def local_frames(x, y, is_barrel) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit vectors u, v, w float64 [N, 3] of the sensor frame at each hit (see module docstring)."""
    phi = np.arctan2(y, x)
    c, s, zero, one = np.cos(phi), np.sin(phi), np.zeros_like(phi), np.ones_like(phi)
    u = np.stack([-s, c, zero], axis=1)
    radial = np.stack([c, s, zero], axis=1)
    axial = np.stack([zero, zero, one], axis=1)
    barrel = np.asarray(is_barrel, bool)[:, None]
    return u, np.where(barrel, axial, radial), np.where(barrel, radial, axial)


def simulate_cells(rng: np.random.Generator, volume_id, is_barrel, x, y, z, px, py, pz, u0, v0) -> pd.DataFrame:
    """The cells of N hits: rows `hit` (0..N-1, the input order), ch0, ch1 (int32 channels from the
    module's low edge), value (float32 charge, 1 = a normal-incidence crossing's total).

    Args:
      volume_id: int [N]; is_barrel: bool [N]; x, y, z: the measured hit positions (mm), the
        cluster's centre; px, py, pz: the particle's momentum at the crossing (GeV); all zero for
        noise, which gets an isotropic random direction; u0, v0: the hit's position across and
        along the sensor from the module's low edge (mm, >= 0).
    """
    n = len(volume_id)
    pitch_u, pitch_v, thick = sensors(volume_id, "simulation")
    p = np.stack([px, py, pz], axis=1).astype(np.float64)
    norm = np.linalg.norm(p, axis=1)
    iso = rng.normal(size=(n, 3))
    d = np.where(norm[:, None] > 0, p / np.maximum(norm, 1e-300)[:, None], iso / np.linalg.norm(iso, axis=1)[:, None])
    u, v, w = local_frames(x, y, is_barrel)
    du, dv, dw = (np.sum(d * e, axis=1) for e in (u, v, w))
    dw = np.where(dw < 0, -1.0, 1.0) * np.maximum(np.abs(dw), MIN_COS_INCIDENCE)
    span_u, span_v = thick * du / dw, thick * dv / dw
    steps = np.ceil(np.maximum(np.abs(span_u) / pitch_u, np.abs(span_v) / pitch_v))
    samples = np.clip(2 * steps.astype(np.int64) + 1, 1, MAX_SAMPLES)
    hit = np.repeat(np.arange(n), samples)
    start = np.cumsum(samples) - samples
    k = np.arange(len(hit)) - start[hit]
    frac = np.where(samples[hit] > 1, k / np.maximum(samples[hit] - 1, 1) - 0.5, 0.0)
    ch0 = np.maximum(np.floor((u0[hit] + frac * span_u[hit]) / pitch_u[hit]), 0).astype(np.int64)
    ch1 = np.maximum(np.floor((v0[hit] + frac * span_v[hit]) / pitch_v[hit]), 0).astype(np.int64)
    key = (hit * (1 << 20) + ch0) * (1 << 20) + ch1
    uniq, count = np.unique(key, return_counts=True)
    cell_hit = uniq >> 40
    # charge ~ path length in silicon (1 / |d_w|), shared over the cells in proportion to the
    # samples falling in each; a per-cluster Gamma factor stands in for the Landau fluctuation
    shape = 1.0 / CHARGE_SPREAD ** 2
    charge = rng.gamma(shape, 1.0 / shape, size=n) / np.abs(dw)
    value = charge[cell_hit] * count / samples[cell_hit]
    return pd.DataFrame({"hit": cell_hit, "ch0": ((uniq >> 20) & ((1 << 20) - 1)).astype(np.int32),
                         "ch1": (uniq & ((1 << 20) - 1)).astype(np.int32), "value": value.astype(np.float32)})


def cluster_shape(cells: pd.DataFrame, hit_id: np.ndarray, volume_id: np.ndarray | None = None,
                  source: str = "cells") -> dict[str, np.ndarray]:
    """Per-hit cluster features, float64 [N] each, for the hits `hit_id` (0 for a hit without cells):

      cell_count: cells in the cluster; cell_value: summed charge;
      cell_angle_u, cell_angle_v: the incidence angles across and along the sensor estimated from
        the cluster's extent, arctan((n - 1) * pitch / thickness) in units of pi / 2 (in [0, 1)),
        n = channels spanned; they need each hit's `volume_id` (its sensor, see `sensors`).
    """
    hit_id = np.asarray(hit_id, np.int64)
    cell_hit = cells["hit_id"].to_numpy(np.int64)
    order = np.argsort(cell_hit, kind="stable")
    cell_hit = cell_hit[order]
    uniq, first, count = np.unique(cell_hit, return_index=True, return_counts=True)
    pos = np.clip(np.searchsorted(uniq, hit_id), 0, max(uniq.size - 1, 0))
    has = (uniq[pos] == hit_id) if uniq.size else np.zeros(hit_id.shape, bool)

    def per_hit(values: np.ndarray) -> np.ndarray:
        return np.where(has, values[pos], 0.0) if uniq.size else np.zeros(hit_id.shape)

    value = np.add.reduceat(cells["value"].to_numpy(np.float64)[order], first) if uniq.size else np.zeros(0)
    out = {"cell_count": per_hit(count.astype(np.float64)), "cell_value": per_hit(value)}
    if volume_id is None:
        return out
    pitch_u, pitch_v, thick = sensors(volume_id, source)
    for name, column, pitch in (("cell_angle_u", "ch0", pitch_u), ("cell_angle_v", "ch1", pitch_v)):
        ch = cells[column].to_numpy(np.int64)[order]
        span = (np.maximum.reduceat(ch, first) - np.minimum.reduceat(ch, first)) if uniq.size else np.zeros(0)
        out[name] = np.arctan(per_hit(span.astype(np.float64)) * pitch / thick) / (np.pi / 2)
    return out
