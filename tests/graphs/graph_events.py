"""Hand-made TrackML-format events for graph tests: ideal helices (2 T) through the TrackML pixel
layout of `trackml_layer_table()`, with exact truth, optional noise and duplicate hits."""

from __future__ import annotations

import numpy as np
import pandas as pd

from gnntrack.graphs.layer_map import trackml_layer_table
from gnntrack.io.event import Event

MM_PER_GEV = 1000.0 / (0.3 * 2.0)  # helix radius (mm) per GeV of pT in a 2 T field


def helix_event(pt, phi0, eta, q=None, vz=None, *, n_noise=0, duplicate_every=0, seed=0,
                volumes=(7, 8, 9), event_id=1) -> Event:
    """An event with one particle per entry of pt/phi0/eta (arrays [P]); vertex (0, 0, vz).

    Hits are the exact crossings with the pixel barrels (mean radius) and disks (mean z).
    duplicate_every=k adds a second hit (module overlap, 0.5 mm further along the path) on the
    same layer for every k-th hit. Noise hits are uniform on random selected layers.
    """
    rng = np.random.default_rng(seed)
    pt, phi0, eta = (np.atleast_1d(np.asarray(v, np.float64)) for v in (pt, phi0, eta))
    n_p = pt.size
    q = np.ones(n_p) if q is None else np.atleast_1d(np.asarray(q, np.float64))
    vz = np.zeros(n_p) if vz is None else np.atleast_1d(np.asarray(vz, np.float64))
    table = trackml_layer_table()
    lay = np.flatnonzero(np.isin(table.volume_id, volumes))
    R = pt * MM_PER_GEV
    cot = np.sinh(eta)
    # Turning angle alpha of each (particle, layer) crossing; inf where not crossed.
    r_mid = 0.5 * (table.r_min + table.r_max)[lay]
    z_mid = 0.5 * (table.z_min + table.z_max)[lay]
    barrel = table.is_barrel[lay]
    with np.errstate(divide="ignore", invalid="ignore"):
        a_barrel = 2 * np.arcsin(np.clip(r_mid[None] / (2 * R[:, None]), -2, 2))
        a_barrel = np.where(r_mid[None] <= 2 * R[:, None], a_barrel, np.nan)
        a_disk = (z_mid[None] - vz[:, None]) / (R[:, None] * cot[:, None])
    alpha = np.where(barrel[None], a_barrel, a_disk)
    r_at = 2 * R[:, None] * np.abs(np.sin(alpha / 2))
    z_at = vz[:, None] + R[:, None] * alpha * cot[:, None]
    ok = np.isfinite(alpha) & (alpha > 0) & (alpha < np.pi)
    ok &= np.where(barrel[None], (z_at >= table.z_min[lay][None]) & (z_at <= table.z_max[lay][None]),
                   (r_at >= table.r_min[lay][None]) & (r_at <= table.r_max[lay][None]))
    p_idx, l_idx = np.nonzero(ok)
    a = alpha[p_idx, l_idx]
    if duplicate_every:
        dup = np.arange(a.size) % duplicate_every == 0
        a = np.r_[a, a[dup] + 0.5 / R[p_idx[dup]]]
        p_idx = np.r_[p_idx, p_idx[dup]]
        l_idx = np.r_[l_idx, l_idx[dup]]
    h = -q[p_idx]
    phi_a = phi0[p_idx] + h * a
    x = (R[p_idx] / h) * (np.sin(phi_a) - np.sin(phi0[p_idx]))
    y = -(R[p_idx] / h) * (np.cos(phi_a) - np.cos(phi0[p_idx]))
    z = vz[p_idx] + R[p_idx] * a * cot[p_idx]
    px, py = pt[p_idx] * np.cos(phi_a), pt[p_idx] * np.sin(phi_a)
    pz = pt[p_idx] * cot[p_idx]
    pid = p_idx.astype(np.int64) + 1
    vol = table.volume_id[lay][l_idx]
    lid = table.layer_id[lay][l_idx]
    if n_noise:
        nl = rng.integers(0, lay.size, n_noise)
        nphi = rng.uniform(-np.pi, np.pi, n_noise)
        nr = np.where(barrel[nl], r_mid[nl], rng.uniform(table.r_min[lay][nl], table.r_max[lay][nl]))
        nz = np.where(barrel[nl], rng.uniform(table.z_min[lay][nl], table.z_max[lay][nl]), z_mid[nl])
        x, y, z = np.r_[x, nr * np.cos(nphi)], np.r_[y, nr * np.sin(nphi)], np.r_[z, nz]
        px, py, pz = np.r_[px, np.zeros(n_noise)], np.r_[py, np.zeros(n_noise)], np.r_[pz, np.zeros(n_noise)]
        pid = np.r_[pid, np.zeros(n_noise, np.int64)]
        vol = np.r_[vol, table.volume_id[lay][nl]]
        lid = np.r_[lid, table.layer_id[lay][nl]]
    perm = rng.permutation(x.size)  # hit ids carry no order information
    n = x.size
    hits = pd.DataFrame({"hit_id": np.arange(1, n + 1, dtype=np.int64), "x": x[perm].astype(np.float32),
                         "y": y[perm].astype(np.float32), "z": z[perm].astype(np.float32),
                         "volume_id": vol[perm].astype(np.int32), "layer_id": lid[perm].astype(np.int32),
                         "module_id": np.ones(n, np.int32)})
    truth = pd.DataFrame({"hit_id": hits.hit_id, "particle_id": pid[perm], "tx": hits.x, "ty": hits.y,
                          "tz": hits.z, "tpx": px[perm].astype(np.float32), "tpy": py[perm].astype(np.float32),
                          "tpz": pz[perm].astype(np.float32), "weight": np.ones(n, np.float32)})
    particles = pd.DataFrame({"particle_id": np.arange(1, n_p + 1, dtype=np.int64),
                              "particle_type": np.full(n_p, 13, np.int32),
                              "vx": np.zeros(n_p, np.float32), "vy": np.zeros(n_p, np.float32),
                              "vz": vz.astype(np.float32),
                              "px": (pt * np.cos(phi0)).astype(np.float32),
                              "py": (pt * np.sin(phi0)).astype(np.float32),
                              "pz": (pt * cot).astype(np.float32), "q": q.astype(np.int32),
                              "nhits": np.bincount(pid[pid > 0] - 1, minlength=n_p).astype(np.int32)})
    return Event(event_id=event_id, hits=hits, truth=truth, particles=particles)


def random_event(n_particles=200, n_noise=0, seed=0, pt_range=(0.5, 5.0), eta_max=3.5, **kw) -> Event:
    """Random helices: pT log-uniform, phi uniform, eta uniform, vz ~ N(0, 50 mm), random charge."""
    rng = np.random.default_rng(seed)
    pt = np.exp(rng.uniform(np.log(pt_range[0]), np.log(pt_range[1]), n_particles))
    return helix_event(pt, rng.uniform(-np.pi, np.pi, n_particles), rng.uniform(-eta_max, eta_max, n_particles),
                       q=rng.choice([-1.0, 1.0], n_particles), vz=rng.normal(0, 50, n_particles),
                       n_noise=n_noise, seed=seed, **kw)
