"""Summary statistics of one event (used by `gnntrack inspect` and `gnntrack quickstart`).

Pure computation on a validated `Event`; the result is a JSON-serialisable dict of plain Python
numbers, lists and dicts (dict keys are strings).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from gnntrack.io.event import Event

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
# The realism selection: particles a tracking study cares about (central, pT above 1 GeV).
PT_MIN_GEV = 1.0
ABS_ETA_MAX = 2.5


def quantile_summary(values: np.ndarray) -> dict[str, float | int | None]:
    """{n, mean, min, q05, q25, median, q75, q95, max} of a 1-D array (None entries when empty)."""
    values = np.asarray(values, dtype=np.float64)
    keys = ["mean", "min", "q05", "q25", "median", "q75", "q95", "max"]
    if values.size == 0:
        return {"n": 0, **{k: None for k in keys}}
    q = np.quantile(values, QUANTILES)
    stats = [values.mean(), values.min(), *q, values.max()]
    return {"n": int(values.size), **{k: float(v) for k, v in zip(keys, stats)}}


def particle_kinematics(particles: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Transverse momentum pT (GeV) and pseudorapidity η of each particle, from px, py, pz.

    η = asinh(pz / pT); a particle with pT = 0 gets η = ±inf (sign of pz, or +inf at rest).
    """
    px, py, pz = (particles[c].to_numpy(np.float64) for c in ("px", "py", "pz"))
    pt = np.hypot(px, py)
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.where(pt > 0, np.arcsinh(pz / np.where(pt > 0, pt, 1.0)),
                       np.where(pz < 0, -np.inf, np.inf))
    return pt, eta


def hits_per_layer(hits: pd.DataFrame) -> list[dict[str, int]]:
    """[{volume_id, layer_id, n_hits}] sorted by volume, then layer."""
    counts = hits.groupby(["volume_id", "layer_id"], sort=True).size()
    return [{"volume_id": int(v), "layer_id": int(layer), "n_hits": int(n)} for (v, layer), n in counts.items()]


def hit_counts(truth: pd.DataFrame) -> pd.Series:
    """Number of hits of each particle (index particle_id, noise excluded)."""
    pid = truth["particle_id"]
    return pid[pid != 0].value_counts(sort=False)


def event_summary(event: Event) -> dict[str, Any]:
    """Summary of one event.

    Keys (None where the needed table is absent):
      event_id, n_hits, n_cells, hits_per_volume {volume_id: n}, hits_per_layer [...],
      hit_r_mm / hit_z_mm (quantile summaries of the hit positions);
      n_noise_hits, noise_fraction, n_particles_with_hits, truth_weight_sum (truth);
      n_particles, pt_gev, eta (quantile summaries over the particle table; η over pT > 0), charge_counts;
      hits_per_particle: quantile summary over particles with at least one hit (truth counts);
      selection: {pt_min_gev, abs_eta_max, n_particles, mean_hits_per_particle} for particles with
        pT > 1 GeV and |η| < 2.5 (vertex momentum) and at least one hit; counts come from truth,
        or from particles.nhits when there is no truth.
    """
    hits = event.hits
    r = np.hypot(hits["x"].to_numpy(np.float64), hits["y"].to_numpy(np.float64))
    vol = hits["volume_id"].value_counts().sort_index()
    out: dict[str, Any] = {
        "event_id": int(event.event_id),
        "n_hits": int(len(hits)),
        "n_cells": None if event.cells is None else int(len(event.cells)),
        "hits_per_volume": {str(int(v)): int(n) for v, n in vol.items()},
        "hits_per_layer": hits_per_layer(hits),
        "hit_r_mm": quantile_summary(r),
        "hit_z_mm": quantile_summary(hits["z"].to_numpy()),
        "n_noise_hits": None, "noise_fraction": None, "n_particles_with_hits": None,
        "truth_weight_sum": None, "n_particles": None, "pt_gev": None, "eta": None,
        "charge_counts": None, "hits_per_particle": None, "selection": None,
    }
    counts = None
    if event.truth is not None:
        truth = event.truth
        n_noise = int((truth["particle_id"].to_numpy() == 0).sum())
        counts = hit_counts(truth)
        out.update(n_noise_hits=n_noise, noise_fraction=n_noise / max(len(truth), 1),
                   n_particles_with_hits=int(len(counts)),
                   truth_weight_sum=float(truth["weight"].to_numpy(np.float64).sum()),
                   hits_per_particle=quantile_summary(counts.to_numpy()))
    if event.particles is not None:
        particles = event.particles
        pt, eta = particle_kinematics(particles)
        q = particles["q"].value_counts().sort_index()
        out.update(n_particles=int(len(particles)), pt_gev=quantile_summary(pt),
                   eta=quantile_summary(eta[np.isfinite(eta)]),
                   charge_counts={str(int(k)): int(v) for k, v in q.items()})
        if counts is not None:
            n = counts.reindex(particles["particle_id"].to_numpy(), fill_value=0).to_numpy()
        else:
            n = particles["nhits"].to_numpy()
        sel = (pt > PT_MIN_GEV) & (np.abs(eta) < ABS_ETA_MAX) & (n > 0)
        if out["hits_per_particle"] is None:
            out["hits_per_particle"] = quantile_summary(n[n > 0])
        out["selection"] = {
            "pt_min_gev": PT_MIN_GEV, "abs_eta_max": ABS_ETA_MAX, "n_particles": int(sel.sum()),
            "mean_hits_per_particle": float(n[sel].mean()) if sel.any() else None,
        }
    return out
