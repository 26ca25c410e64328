"""Planes toy: straight or curved tracks through N parallel planes, in 2D or 3D.

    config = default_toy_config(); config.curved = True; config.dims = 3
    event = simulate_toy_event(np.random.default_rng(0), config)
    detector = planes_detector(config)          # pass to the graph builder with this event

Geometry: plane i (i = 0..N-1) is the surface x = (i + 1) * spacing (mm), sensitive for
|y| <= half_height (and |z| <= half_height in 3D). Tracks start at x = 0 near the origin
(y0, z0 ~ N(0, vertex_sigma)) with direction angle alpha in the x-y plane (|alpha| <= angle_max)
and, in 3D, slope dz/dx in [-slope_max, slope_max]; z grows linearly with x. Curved tracks are
circles in x-y with curvature kappa uniform in [-curvature_max, curvature_max] (1/mm), i.e. the
projection of a helix in a field B = bfield along z: pT = 0.3 B / |kappa| (GeV, T, m);
straight tracks carry pT = straight_pt. A track that curls back before a plane stops there.

The event uses the TrackML tables (volume_id 1, layer_id 2, 4, ..., module ids from a
n_modules (y) x n_modules (z, 3D only) tiling; 2D events have z = 0), so the graph builder and
the I/O run on it unchanged; `planes_detector` gives the matching `Detector` (rows are
"barrel" layers whose `position` is the plane's x).
"""

from __future__ import annotations

import ml_collections
import numpy as np
import pandas as pd

from gnntrack.detector.geometry import Detector
from gnntrack.detector.particles import particles_frame
from gnntrack.detector.weights import trackml_weights
from gnntrack.errors import ConfigError
from gnntrack.io.event import HITS_COLUMNS, TRUTH_COLUMNS, Event
from gnntrack.keys import check_known_keys

TOY_VOLUME_ID = 1


def default_toy_config() -> ml_collections.ConfigDict:
    """Planes-toy settings (mm, rad, GeV, T)."""
    c = ml_collections.ConfigDict()
    c.n_planes = 10
    c.spacing = 100.0
    c.half_height = 1000.0
    c.n_tracks = 50
    c.dims = 2
    c.curved = False
    c.curvature_max = 1.0e-3
    c.bfield = 2.0
    c.straight_pt = 100.0
    c.angle_max = 0.5
    c.slope_max = 0.5
    c.vertex_sigma = 1.0
    c.sigma = 0.05
    c.efficiency = 1.0
    c.noise_fraction = 0.0
    c.n_modules = 10
    return c


def validate_toy_config(config, where: str = "toy") -> None:
    """Raises ConfigError naming the key for unknown keys or bad values."""
    check_known_keys(config, default_toy_config(), where)
    checks = [("n_planes", config.n_planes >= 2, "must be >= 2"), ("dims", config.dims in (2, 3), "must be 2 or 3"),
              ("n_tracks", config.n_tracks >= 1, "must be >= 1"), ("spacing", config.spacing > 0, "must be > 0"),
              ("noise_fraction", 0 <= config.noise_fraction < 1, "must be in [0, 1)"),
              ("efficiency", 0 <= config.efficiency <= 1, "must be in [0, 1]"),
              ("angle_max", 0 <= config.angle_max < np.pi / 2, "must be in [0, pi/2)"),
              ("n_modules", config.n_modules >= 1, "must be >= 1")]
    for key, ok, msg in checks:
        if not ok:
            raise ConfigError(f"{where}.{key}={config[key]!r} {msg}")


def planes_detector(config) -> Detector:
    """The toy as a `Detector`: one row per plane (volume 1, layer_id 2, 4, ...)."""
    n = int(config.n_planes)
    f = lambda v, t=np.float64: np.full(n, v, t)  # noqa: E731
    return Detector(
        volume_id=f(TOY_VOLUME_ID, np.int32), layer_id=(2 * np.arange(1, n + 1)).astype(np.int32),
        is_barrel=np.ones(n, bool), position=config.spacing * np.arange(1, n + 1, dtype=np.float64),
        min_extent=f(-config.half_height), max_extent=f(config.half_height),
        n_phi=f(config.n_modules, np.int32), n_long=f(config.n_modules if config.dims == 3 else 1, np.int32),
        sigma_across=f(config.sigma), sigma_along=f(config.sigma if config.dims == 3 else 0.0),
        x_over_x0=f(0.0), efficiency=f(config.efficiency), half_thickness=f(0.5), pixel_volumes=(TOY_VOLUME_ID,))


def toy_track_positions(plane_x, y0, z0, alpha, kappa, dzdx):
    """Crossing points of tracks with planes. Inputs [T] (track) and [N] (plane_x).

    Returns y, z [T, N] and the direction angle at each crossing [T, N]; NaN where a curved
    track turned back before the plane. Uses a cancellation-free form of the circle, exact for
    kappa = 0 (straight line y = y0 + x tan(alpha)).
    """
    X = plane_x[None, :]
    s_a, c_a = np.sin(alpha)[:, None], np.cos(alpha)[:, None]
    v = s_a + kappa[:, None] * X                      # sin of the direction angle at the plane
    reach = np.abs(v) < 1.0
    v = np.where(reach, v, np.nan)
    cos_v = np.sqrt(1.0 - v ** 2)
    y = y0[:, None] + X * (v + s_a) / (c_a + cos_v)
    z = z0[:, None] + X * dzdx[:, None]
    return y, z, np.arcsin(v)


def simulate_toy_event(rng: np.random.Generator, config=None, event_id: int = 0) -> Event:
    """One planes-toy event in TrackML tables (see module docstring). Noise hits: particle_id 0."""
    config = config if config is not None else default_toy_config()
    validate_toy_config(config)
    n_t, n_p = int(config.n_tracks), int(config.n_planes)
    three_d = config.dims == 3
    plane_x = config.spacing * np.arange(1, n_p + 1, dtype=np.float64)
    y0 = rng.normal(0.0, config.vertex_sigma, n_t)
    z0 = rng.normal(0.0, config.vertex_sigma, n_t) if three_d else np.zeros(n_t)
    alpha = rng.uniform(-config.angle_max, config.angle_max, n_t)
    kappa = rng.uniform(-config.curvature_max, config.curvature_max, n_t) if config.curved else np.zeros(n_t)
    dzdx = rng.uniform(-config.slope_max, config.slope_max, n_t) if three_d else np.zeros(n_t)
    ty, tz, angle = toy_track_positions(plane_x, y0, z0, alpha, kappa, dzdx)
    pt = np.where(kappa != 0, 0.299792458e-3 * config.bfield / np.maximum(np.abs(kappa), 1e-300), config.straight_pt)
    pt = np.minimum(pt, config.straight_pt)

    inside = np.isfinite(ty) & (np.abs(ty) <= config.half_height) & (np.abs(tz) <= config.half_height)
    # a track is followed until it first leaves the planes' area (or turns back)
    inside &= np.cumprod(inside, axis=1).astype(bool)
    recorded = inside & (rng.random(inside.shape) < config.efficiency)
    track, plane = np.nonzero(recorded)
    tx = plane_x[plane]
    ty, tz, angle = ty[track, plane], tz[track, plane], angle[track, plane]
    y = ty + rng.normal(0.0, config.sigma, len(ty))
    z = tz + rng.normal(0.0, config.sigma, len(tz)) if three_d else tz.copy()
    n_sig = len(track)
    n_noise = int(round(config.noise_fraction / (1 - config.noise_fraction) * n_sig))
    noise_plane = rng.integers(0, n_p, n_noise)
    noise_y = rng.uniform(-config.half_height, config.half_height, n_noise)
    noise_z = rng.uniform(-config.half_height, config.half_height, n_noise) if three_d else np.zeros(n_noise)

    particle_id = np.arange(1, n_t + 1, dtype=np.int64)
    plane_all = np.concatenate([plane, noise_plane])
    x_all = plane_x[plane_all]
    y_all, z_all = np.concatenate([y, noise_y]), np.concatenate([z, noise_z])
    n_mod = int(config.n_modules)
    iy = np.clip(((y_all + config.half_height) / (2 * config.half_height) * n_mod).astype(np.int64), 0, n_mod - 1)
    iz = np.clip(((z_all + config.half_height) / (2 * config.half_height) * n_mod).astype(np.int64), 0, n_mod - 1)
    module = (iy * (n_mod if three_d else 1) + (iz if three_d else 0) + 1).astype(np.int32)
    layer_id = (2 * (plane_all + 1)).astype(np.int32)
    shuffle = rng.permutation(len(plane_all))
    order = shuffle[np.lexsort((module[shuffle], layer_id[shuffle]))]

    p_hit = pt[track]
    zero = np.zeros(n_noise)
    truth_pid = np.concatenate([particle_id[track], np.zeros(n_noise, np.int64)])
    q = np.where(kappa > 0, -1, 1).astype(np.int32)   # kappa > 0 turns counter-clockwise: negative in B along +z
    particles = particles_frame(
        particle_id=particle_id, particle_type=211 * q, vx=np.zeros(n_t), vy=y0, vz=z0,
        px=pt * np.cos(alpha), py=pt * np.sin(alpha), pz=pt * dzdx * np.cos(alpha), q=q,
        nhits=np.bincount(track, minlength=n_t))
    hits = pd.DataFrame({"hit_id": np.arange(1, len(order) + 1), "x": x_all[order], "y": y_all[order],
                         "z": z_all[order], "volume_id": np.full(len(order), TOY_VOLUME_ID),
                         "layer_id": layer_id[order], "module_id": module[order]}).astype(HITS_COLUMNS)
    truth = pd.DataFrame({
        "hit_id": hits["hit_id"].to_numpy(), "particle_id": truth_pid[order],
        "tx": np.concatenate([tx, x_all[n_sig:]])[order], "ty": np.concatenate([ty, noise_y])[order],
        "tz": np.concatenate([tz, noise_z])[order],
        "tpx": np.concatenate([p_hit * np.cos(angle), zero])[order],
        "tpy": np.concatenate([p_hit * np.sin(angle), zero])[order],
        "tpz": np.concatenate([p_hit * dzdx[track] * np.cos(angle), zero])[order]})  # dz/ds_T = dzdx cos(angle)
    # hit order along a toy track is the plane order (x), not |tz - vz| (z is 0 in 2D)
    truth["weight"] = trackml_weights(truth["particle_id"].to_numpy(), truth["tz"].to_numpy(), particles,
                                      hit_order=truth["tx"].to_numpy())
    truth = truth.astype(TRUTH_COLUMNS)[list(TRUTH_COLUMNS)]
    return Event(event_id=int(event_id), hits=hits, truth=truth, particles=particles)
