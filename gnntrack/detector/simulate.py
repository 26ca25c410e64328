"""Fast TrackML-like event simulation: particles -> hits, truth, particles tables.

    config = default_simulation_config(); config.pileup = 200
    rng = np.random.default_rng([seed, event_index])
    event = simulate_event(generate_particles(rng, config), rng, config, event_id=1000)

Physics model (all vectorised over particles; the only Python loop is over successive surface
crossings, at most `max_crossings` iterations):
  * helices in a uniform solenoid field B along +z: transverse radius R[mm] = 1000 pT[GeV] /
    (0.3 B[T]); a positive charge turns clockwise seen from +z;
  * at each step every live particle moves to its next crossing, the nearest (in turning angle,
    i.e. in time) of: any barrel cylinder, or the next endcap plane along its z direction. A
    crossing inside a layer's sensitive area is a hit candidate; outside it the particle passes;
  * at each sensitive crossing: the hit is kept with the layer efficiency; multiple scattering
    (Highland formula with the layer's x/X0 scaled by 1/cos(incidence)) kicks the direction by
    two independent Gaussian angles; optionally energy loss (minimum-ionising silicon,
    36 MeV per X0) lowers |p| and stops particles that range out;
  * loopers: a particle is followed for the first half turn only (turning angle <= `max_turn`,
    pi by default): it stops where it would start to curl back towards the beam, so no particle
    leaves a second, inward-going arc of hits;
  * measured position: the true crossing moved *along the surface* by Gaussian errors (r·phi and
    z on cylinders, r·phi and r on disks; strips are coarse along the strip), so every hit lies
    exactly on its layer's surface (cylinder radius or disk z);
  * module overlaps: with probability duplicate_fraction a recorded crossing gives a second hit
    on the same layer (same true point, independent smearing), like TrackML's double hits;
  * noise: noise_fraction of all hits, uniform over the sensitive area of all layers
    (layers picked in proportion to their area), particle_id 0;
  * truth weights: the TrackML phase-1 definition (gnntrack.detector.weights);
  * with `cells`: each hit's cluster of pixels / strips from the particle's direction at the
    crossing (gnntrack.detector.cells), drawn after everything else, so that hits and truth are
    the same with and without cells.
Units: mm, GeV, tesla, radians.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from pathlib import Path
from typing import Sequence

import ml_collections
import numpy as np
import pandas as pd

from gnntrack.detector.cells import simulate_cells
from gnntrack.detector.geometry import Detector, default_detector
from gnntrack.detector.particles import generate_particles, particle_masses, particles_frame
from gnntrack.detector.toy import simulate_toy_event
from gnntrack.detector.weights import trackml_weights
from gnntrack.errors import ConfigError, InputError
from gnntrack.io.event import CELLS_COLUMNS, HITS_COLUMNS, PARTICLES_COLUMNS, TRUTH_COLUMNS, Event
from gnntrack.io.trackml import write_event
from gnntrack.keys import check_known_keys

__all__ = ["default_simulation_config", "generate_particles", "simulate_event", "simulate_events",
           "event_rng", "helix_radius_mm", "validate_simulation_config"]

MEV_PER_X0_SILICON = 36.3e-3  # GeV lost per radiation length by a minimum-ionising particle in Si


def default_simulation_config() -> ml_collections.ConfigDict:
    """Default simulation settings (units: GeV, mm, tesla).

    Keys: pileup (mean collisions; used when n_particles == 0), particles_per_collision,
    n_particles (fixed count, 0 = use pileup), pt_min, pt_soft_scale, hard_fraction, hard_pt_min,
    hard_power, pt_max, eta_max, vertex_sigma_xy, vertex_sigma_z (particle generator, see
    gnntrack.detector.particles); bfield; multiple_scattering, energy_loss, smearing,
    inefficiency (switches); efficiency_scale (multiplies every layer efficiency, capped at 1);
    noise_fraction (noise hits / all hits); duplicate_fraction (probability that a recorded
    crossing leaves a second hit on the same layer, as overlapping modules do in TrackML, where
    ~10% of crossings give two hits); max_turn (radians followed per particle; pi = stop
    after the first half turn); max_crossings (safety bound on steps); cells (also simulate each
    hit's pixel / strip cluster, TrackML's cells table, see gnntrack.detector.cells; off by
    default: it adds a file of several cells per hit).
    """
    c = ml_collections.ConfigDict()
    c.pileup = 200.0
    c.particles_per_collision = 50.0
    c.n_particles = 0
    c.pt_min = 0.1
    c.pt_soft_scale = 0.2
    c.hard_fraction = 0.05
    c.hard_pt_min = 1.0
    c.hard_power = 4.0
    c.pt_max = 200.0
    c.eta_max = 4.0
    c.vertex_sigma_xy = 0.015
    c.vertex_sigma_z = 55.0
    c.bfield = 2.0
    c.multiple_scattering = True
    c.energy_loss = True
    c.smearing = True
    c.inefficiency = True
    c.efficiency_scale = 1.0
    c.noise_fraction = 0.1
    c.duplicate_fraction = 0.08
    c.max_turn = float(np.pi)
    c.max_crossings = 64
    c.cells = False
    return c


def validate_simulation_config(config, where: str = "simulation") -> None:
    """Raises ConfigError naming the key for unknown keys or out-of-range values."""
    check_known_keys(config, default_simulation_config(), where)
    checks = [
        ("noise_fraction", 0.0 <= config.noise_fraction < 1.0, "must be in [0, 1)"),
        ("bfield", config.bfield > 0, "must be > 0 (tesla)"),
        ("pt_min", config.pt_min > 0, "must be > 0 (GeV)"),
        ("hard_power", config.hard_power > 1, "must be > 1"),
        ("hard_fraction", 0.0 <= config.hard_fraction <= 1.0, "must be in [0, 1]"),
        ("eta_max", config.eta_max > 0, "must be > 0"),
        ("n_particles", config.n_particles >= 0, "must be >= 0"),
        ("pileup", config.pileup > 0 or config.n_particles > 0, "must be > 0 unless n_particles > 0"),
        ("max_turn", 0 < config.max_turn <= 2 * np.pi, "must be in (0, 2 pi]"),
        ("efficiency_scale", 0 <= config.efficiency_scale, "must be >= 0"),
        ("duplicate_fraction", 0.0 <= config.duplicate_fraction <= 1.0, "must be in [0, 1]"),
    ]
    for key, ok, msg in checks:
        if not ok:
            raise ConfigError(f"{where}.{key}={config[key]!r} {msg}")


def helix_radius_mm(pt_gev, bfield_tesla):
    """Transverse helix radius in mm: R[m] = pT[GeV] / (0.3 B[T])."""
    return 1000.0 * np.asarray(pt_gev, np.float64) / (0.299792458 * bfield_tesla)


def event_rng(seed: int, event_index: int) -> np.random.Generator:
    """The random stream of event `event_index` of a run seeded with `seed` (independent of how
    many events are simulated, so event k is the same alone or in a batch)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(event_index)]))


# --------------------------------------------------------------------------------------- surfaces

@dataclasses.dataclass(frozen=True, eq=False)
class _Surfaces:
    """The detector regrouped for stepping: cylinders [C] and signed disk planes [Z] (sorted)."""

    cyl_r: np.ndarray          # [C] radius, ascending
    cyl_layer: np.ndarray      # [C] detector row
    cyl_zmin: np.ndarray
    cyl_zmax: np.ndarray
    plane_z: np.ndarray        # [Z] signed z, ascending (layers sharing a z share a plane)
    plane_rmin: np.ndarray     # [Z, M] r ranges of the layers on the plane (padded: empty range)
    plane_rmax: np.ndarray
    plane_layer: np.ndarray    # [Z, M] detector rows, -1 padding


@functools.lru_cache(maxsize=8)
def _surfaces(detector: Detector) -> _Surfaces:
    barrel = np.flatnonzero(detector.is_barrel)
    barrel = barrel[np.argsort(detector.position[barrel], kind="stable")]
    disks = np.flatnonzero(~detector.is_barrel)
    plane_z, inverse = np.unique(detector.position[disks], return_inverse=True)
    width = max(1, int(np.bincount(inverse).max())) if len(disks) else 1
    rmin = np.full((len(plane_z), width), np.inf)
    rmax = np.full((len(plane_z), width), -np.inf)
    layer = np.full((len(plane_z), width), -1, np.int64)
    fill = np.zeros(len(plane_z), np.int64)
    for row, p in zip(disks, inverse):  # a few dozen layers: table set-up, not per hit
        rmin[p, fill[p]] = detector.min_extent[row]
        rmax[p, fill[p]] = detector.max_extent[row]
        layer[p, fill[p]] = row
        fill[p] += 1
    return _Surfaces(
        cyl_r=detector.position[barrel].astype(np.float64), cyl_layer=barrel.astype(np.int64),
        cyl_zmin=detector.min_extent[barrel], cyl_zmax=detector.max_extent[barrel],
        plane_z=plane_z.astype(np.float64), plane_rmin=rmin, plane_rmax=rmax, plane_layer=layer)


# ------------------------------------------------------------------------------------ propagation

@dataclasses.dataclass
class Crossings:
    """True (noise-free, unsmeared) sensitive crossings that left a hit. Arrays [H].

    particle: row in the particles table; layer: detector row; x, y, z: position on the
    surface (mm); px, py, pz: momentum just before the crossing (GeV); step: crossing number
    along the particle's path (0 = first).
    """

    particle: np.ndarray
    layer: np.ndarray
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray
    step: np.ndarray


def _wrap(a):
    return (a + np.pi) % (2 * np.pi) - np.pi


def propagate(particles: pd.DataFrame, rng: np.random.Generator, config,
              detector: Detector | None = None) -> Crossings:
    """Follows every charged particle through the detector; returns its sensitive crossings.

    Vectorised over particles: each iteration moves all live particles to their next surface.
    Neutral particles (q = 0) leave no hits. See the module docstring for the physics.
    """
    detector = detector or default_detector()
    surf = _surfaces(detector)
    n = len(particles)
    q_all = particles["q"].to_numpy().astype(np.float64)
    px = particles["px"].to_numpy(np.float64)
    py = particles["py"].to_numpy(np.float64)
    pz = particles["pz"].to_numpy(np.float64)
    mass_all = particle_masses(particles["particle_type"].to_numpy() if "particle_type" in particles
                               else np.zeros(n, np.int32))

    live = np.flatnonzero((q_all != 0) & (np.hypot(px, py) > 0))
    x = particles["vx"].to_numpy(np.float64)[live]
    y = particles["vy"].to_numpy(np.float64)[live]
    z = particles["vz"].to_numpy(np.float64)[live]
    pt = np.hypot(px, py)[live]
    phi = np.arctan2(py, px)[live]
    cot = (pz / np.where(np.hypot(px, py) > 0, np.hypot(px, py), 1.0))[live]   # pz / pT
    q = q_all[live]
    mass = mass_all[live]
    turned = np.zeros(len(live))
    last_cyl = np.full(len(live), -1, np.int64)
    direction = np.where(cot >= 0, 1, -1)
    plane_ptr = np.where(direction > 0, np.searchsorted(surf.plane_z, z, "right"),
                         np.searchsorted(surf.plane_z, z, "left") - 1)
    n_planes, n_cyl = len(surf.plane_z), len(surf.cyl_r)
    bscale = 0.299792458e-3 * config.bfield       # GeV per mm of radius
    eff = np.minimum(1.0, detector.efficiency * config.efficiency_scale)
    out: list[tuple] = []

    for step in range(int(config.max_crossings)):
        if len(live) == 0:
            break
        radius = pt / (bscale * np.abs(q))         # mm; R = pT / (0.3 B |q|)
        h = -np.sign(q)                            # +1: counter-clockwise (phi increases)
        cx = x - h * radius * np.sin(phi)
        cy = y + h * radius * np.cos(phi)
        beta0 = np.arctan2(y - cy, x - cx)
        # -- cylinders: circle (centre c, radius R) meets circle (0, r_c) at angles gamma +- delta
        d = np.hypot(cx, cy)
        gamma = np.arctan2(cy, cx)
        rc = surf.cyl_r[None, :]
        a = (rc ** 2 - d[:, None] ** 2 - radius[:, None] ** 2) / (2 * radius[:, None] * np.maximum(d[:, None], 1e-300))
        ok = np.abs(a) <= 1.0
        delta = np.arccos(np.clip(a, -1.0, 1.0))
        rel1 = _wrap(gamma[:, None] + delta - beta0[:, None])      # signed angle of each root from here
        rel2 = _wrap(gamma[:, None] - delta - beta0[:, None])
        # On the cylinder just crossed one root is the current point: keep only the other one.
        is_last = np.arange(n_cyl)[None, :] == last_cyl[:, None]
        drop1 = is_last & (np.abs(rel1) <= np.abs(rel2))
        drop2 = is_last & ~drop1
        turn1 = np.where(drop1, np.inf, np.mod(h[:, None] * rel1, 2 * np.pi))
        turn2 = np.where(drop2, np.inf, np.mod(h[:, None] * rel2, 2 * np.pi))
        turn_c = np.where(ok, np.minimum(turn1, turn2), np.inf)
        icyl = np.argmin(turn_c, axis=1) if n_cyl else np.zeros(len(live), np.int64)
        t_cyl = turn_c[np.arange(len(live)), icyl] if n_cyl else np.full(len(live), np.inf)
        # -- disks: next plane along z; transverse path s = dz / cot, turning angle s / R
        has_plane = (plane_ptr >= 0) & (plane_ptr < n_planes)
        zp = surf.plane_z[np.clip(plane_ptr, 0, max(n_planes - 1, 0))] if n_planes else np.zeros(len(live))
        with np.errstate(divide="ignore", invalid="ignore"):
            t_disk = np.where(has_plane & (cot != 0), (zp - z) / (cot * radius), np.inf)
        t_disk = np.where(t_disk >= 0, t_disk, np.inf)
        t = np.minimum(t_cyl, t_disk)
        go = np.isfinite(t) & (turned + t <= config.max_turn)
        if not go.any():
            break
        if not go.all():
            keep = np.flatnonzero(go)
            live, x, y, z, pt, phi, cot, q, mass, turned, last_cyl, direction, plane_ptr = (
                v[keep] for v in (live, x, y, z, pt, phi, cot, q, mass, turned, last_cyl, direction, plane_ptr))
            radius, h, cx, cy, beta0, t, t_cyl, t_disk, icyl, zp = (
                v[keep] for v in (radius, h, cx, cy, beta0, t, t_cyl, t_disk, icyl, zp))
        hit_cyl = t_cyl <= t_disk
        # -- move along the helix
        beta1 = beta0 + h * t
        x = cx + radius * np.cos(beta1)
        y = cy + radius * np.sin(beta1)
        z = np.where(hit_cyl, z + cot * radius * t, zp)     # exact plane z on disks
        phi = _wrap(phi + h * t)
        turned = turned + t
        r_now = np.hypot(x, y)
        scale = np.where(hit_cyl, surf.cyl_r[icyl] / np.maximum(r_now, 1e-300), 1.0)  # exact cylinder radius
        x, y = x * scale, y * scale
        r_now = np.where(hit_cyl, surf.cyl_r[icyl], r_now)
        # -- which layer (if any) was crossed inside its sensitive area
        layer_c = np.where((z >= surf.cyl_zmin[icyl]) & (z <= surf.cyl_zmax[icyl]), surf.cyl_layer[icyl], -1)
        pidx = np.clip(plane_ptr, 0, max(n_planes - 1, 0))
        if n_planes:
            inside = (r_now[:, None] >= surf.plane_rmin[pidx]) & (r_now[:, None] <= surf.plane_rmax[pidx])
            slot = np.argmax(inside, axis=1)
            layer_d = np.where(inside.any(axis=1), surf.plane_layer[pidx, slot], -1)
        else:
            layer_d = np.full(len(live), -1)
        layer = np.where(hit_cyl, layer_c, layer_d)
        last_cyl = np.where(hit_cyl, icyl, last_cyl)
        plane_ptr = np.where(hit_cyl, plane_ptr, plane_ptr + direction)

        sensitive = layer >= 0
        kept = sensitive & ((rng.random(len(live)) < eff[np.maximum(layer, 0)]) if config.inefficiency else True)
        if kept.any():
            k = np.flatnonzero(kept)
            if config.duplicate_fraction > 0:  # module overlaps: a second measurement of the crossing
                k = np.sort(np.concatenate([k, k[rng.random(len(k)) < config.duplicate_fraction]]))
            out.append((live[k], layer[k], x[k], y[k], z[k], pt[k] * np.cos(phi[k]), pt[k] * np.sin(phi[k]),
                        pt[k] * cot[k], np.full(len(k), step, np.int32)))
        if sensitive.any() and (config.multiple_scattering or config.energy_loss):
            s = np.flatnonzero(sensitive)
            pt_s, cot_s, phi_s, alive_s = _material(
                rng, config, pt[s], cot[s], phi[s], mass[s], np.abs(q[s]), hit_cyl[s], x[s], y[s],
                detector.x_over_x0[layer[s]])
            pt[s], cot[s], phi[s] = pt_s, cot_s, phi_s
            new_dir = np.where(cot >= 0, 1, -1)
            # a kick that reverses the z direction restarts the plane search from here
            flipped = new_dir != direction
            if flipped.any():
                plane_ptr[flipped] = np.where(new_dir[flipped] > 0,
                                              np.searchsorted(surf.plane_z, z[flipped], "right"),
                                              np.searchsorted(surf.plane_z, z[flipped], "left") - 1)
                direction = new_dir
            if not alive_s.all():
                keep = np.ones(len(live), bool)
                keep[s[~alive_s]] = False
                live, x, y, z, pt, phi, cot, q, mass, turned, last_cyl, direction, plane_ptr = (
                    v[keep] for v in (live, x, y, z, pt, phi, cot, q, mass, turned, last_cyl, direction, plane_ptr))

    if not out:
        e_i, e_f = np.zeros(0, np.int64), np.zeros(0)
        return Crossings(e_i, e_i, e_f, e_f, e_f, e_f, e_f, e_f, np.zeros(0, np.int32))
    cols = [np.concatenate(c) for c in zip(*out)]
    return Crossings(*cols)


def _material(rng, config, pt, cot, phi, mass, charge, on_cylinder, x, y, x0):
    """Multiple scattering and energy loss at one crossing. Arrays [S]. Returns pt, cot, phi, alive."""
    sin_t = 1.0 / np.sqrt(1.0 + cot ** 2)
    cos_t = cot * sin_t
    p = pt / sin_t
    # incidence: angle between the direction and the surface normal (radial or z)
    cos_inc = np.where(on_cylinder, np.abs(sin_t * np.cos(phi - np.arctan2(y, x))), np.abs(cos_t))
    t = x0 / np.maximum(cos_inc, 0.05)
    alive = np.ones(len(pt), bool)
    if config.energy_loss:
        energy = np.sqrt(p ** 2 + mass ** 2) - MEV_PER_X0_SILICON * t
        alive = energy > mass * 1.0001
        p = np.sqrt(np.maximum(energy ** 2 - mass ** 2, 1e-12))
    if config.multiple_scattering:
        beta = p / np.sqrt(p ** 2 + mass ** 2)
        tq = t * charge ** 2 / beta ** 2
        theta0 = 0.0136 / (beta * p) * charge * np.sqrt(t) * (1.0 + 0.038 * np.log(np.maximum(tq, 1e-12)))
        k1, k2 = rng.normal(size=(2, len(pt))) * theta0
        # u + k1 e1 + k2 e2 with e1 = phi-hat, e2 = u x e1 (both orthogonal to u)
        cp, sp = np.cos(phi), np.sin(phi)
        ux = sin_t * cp - k1 * sp - k2 * cos_t * cp
        uy = sin_t * sp + k1 * cp - k2 * cos_t * sp
        uz = cos_t + k2 * sin_t
        ut = np.hypot(ux, uy)
        phi = np.arctan2(uy, ux)
        cot = uz / ut
        sin_t = ut / np.sqrt(ut ** 2 + uz ** 2)
    return p * sin_t, cot, phi, alive


# ------------------------------------------------------------------------------------------- hits

def smear_on_surface(rng, detector: Detector, layer, x, y, z, enabled: bool = True):
    """Measured positions: true ones moved along the layer surface by the layer resolution.

    Cylinders: r·phi and z smeared, r unchanged; disks: r·phi and r smeared, z unchanged.
    Returns float64 arrays x, y, z [H].
    """
    if not enabled or len(layer) == 0:
        return x, y, z
    barrel = detector.is_barrel[layer]
    r = np.hypot(x, y)
    phi = np.arctan2(y, x)
    du = rng.normal(size=len(layer)) * detector.sigma_across[layer]
    dv = rng.normal(size=len(layer)) * detector.sigma_along[layer]
    r_new = np.where(barrel, r, np.maximum(r + dv, 1e-3))
    phi_new = phi + du / r
    z_new = np.where(barrel, z + dv, z)
    return r_new * np.cos(phi_new), r_new * np.sin(phi_new), z_new


def noise_hits(rng, detector: Detector, n: int):
    """n noise positions uniform over the sensitive area of all layers. Returns layer, x, y, z."""
    area = detector.surface_area()
    layer = rng.choice(len(area), size=n, p=area / area.sum())
    lo, hi = detector.min_extent[layer], detector.max_extent[layer]
    u = rng.random(n)
    phi = rng.uniform(-np.pi, np.pi, n)
    barrel = detector.is_barrel[layer]
    r = np.where(barrel, detector.position[layer], np.sqrt(lo ** 2 + u * (hi ** 2 - lo ** 2)))  # uniform in area
    z = np.where(barrel, lo + u * (hi - lo), detector.position[layer])
    return layer, r * np.cos(phi), r * np.sin(phi), z


# ------------------------------------------------------------------------------------------ event

def simulate_event(particles: pd.DataFrame, rng: np.random.Generator, config=None,
                   detector: Detector | None = None, event_id: int = 0) -> Event:
    """Simulates one event from its particles.

    Args:
      particles: TrackML particles table (particle_id nonzero and unique, vertex in mm,
        momentum in GeV, q in e; particle_type selects the mass, 0/unknown -> pion).
      rng: the event's numpy Generator (see `event_rng`).
      config: `default_simulation_config()` or a modified copy.
      detector: defaults to `default_detector()`.
    Returns:
      Event with hits [N], truth [N] (noise: particle_id 0, weight 0) and particles [P]
      (nhits filled), TrackML dtypes, hit_id 1..N sorted by (volume_id, layer_id, module_id).
    """
    config = config if config is not None else default_simulation_config()
    detector = detector or default_detector()
    particles = _checked_particles(particles)
    crossings = propagate(particles, rng, config, detector)
    n_sig = len(crossings.layer)
    mx, my, mz = smear_on_surface(rng, detector, crossings.layer, crossings.x, crossings.y, crossings.z,
                                  bool(config.smearing))
    p_ids = particles["particle_id"].to_numpy(np.int64)
    n_noise = int(round(config.noise_fraction / (1.0 - config.noise_fraction) * n_sig)) if n_sig else 0
    n_layer, nx, ny, nz = noise_hits(rng, detector, n_noise)

    layer = np.concatenate([crossings.layer, n_layer]).astype(np.int64)
    x, y, z = np.concatenate([mx, nx]), np.concatenate([my, ny]), np.concatenate([mz, nz])
    zeros = np.zeros(n_noise)
    truth_cols = dict(
        particle_id=np.concatenate([p_ids[crossings.particle], np.zeros(n_noise, np.int64)]),
        tx=np.concatenate([crossings.x, nx]), ty=np.concatenate([crossings.y, ny]),
        tz=np.concatenate([crossings.z, nz]),
        tpx=np.concatenate([crossings.px, zeros]), tpy=np.concatenate([crossings.py, zeros]),
        tpz=np.concatenate([crossings.pz, zeros]))
    long_coord = np.where(detector.is_barrel[layer], z, np.hypot(x, y))
    module = detector.module_id(layer, np.arctan2(y, x), long_coord)
    volume_id, layer_id = detector.volume_id[layer], detector.layer_id[layer]
    # TrackML order: by volume, layer, module; a random order inside a module hides the truth.
    shuffle = rng.permutation(len(layer))
    order = shuffle[np.lexsort((module[shuffle], layer_id[shuffle], volume_id[shuffle]))]

    hits = pd.DataFrame({
        "hit_id": np.arange(1, len(order) + 1, dtype=np.int64),
        "x": x[order], "y": y[order], "z": z[order],
        "volume_id": volume_id[order], "layer_id": layer_id[order], "module_id": module[order]})
    hits = hits.astype(HITS_COLUMNS)
    counts = np.bincount(crossings.particle, minlength=len(particles)) if n_sig else np.zeros(len(particles))
    particles["nhits"] = counts.astype(np.int32)
    truth = pd.DataFrame({"hit_id": hits["hit_id"].to_numpy(), **{k: v[order] for k, v in truth_cols.items()}})
    truth["weight"] = trackml_weights(truth["particle_id"].to_numpy(), truth["tz"].to_numpy(), particles)
    truth = truth.astype(TRUTH_COLUMNS)[list(TRUTH_COLUMNS)]
    cells = None
    if config.get("cells", False):
        cells = _cells(rng, detector, layer[order], x[order], y[order], z[order],
                       *(truth_cols[k][order] for k in ("tpx", "tpy", "tpz")))
        cells.insert(0, "hit_id", hits["hit_id"].to_numpy()[cells.pop("hit").to_numpy()])
        cells = cells.astype(CELLS_COLUMNS)
    return Event(event_id=int(event_id), hits=hits, truth=truth, particles=particles.reset_index(drop=True),
                 cells=cells)


def _cells(rng, detector: Detector, layer, x, y, z, px, py, pz) -> pd.DataFrame:
    """simulate_cells for hits on `layer` rows, their channels counted from the low edge of
    their module (the tiling of Detector.module_id)."""
    barrel = detector.is_barrel[layer]
    r = np.hypot(x, y)
    phi = np.mod(np.arctan2(y, x), 2 * np.pi)
    along = np.where(barrel, z, r)
    iphi, ilong = detector.module_indices(layer, phi, along)
    lo = detector.min_extent[layer]
    long_size = (detector.max_extent[layer] - lo) / detector.n_long[layer]
    u0 = np.maximum(r * (phi - iphi * 2 * np.pi / detector.n_phi[layer]), 0.0)
    v0 = np.maximum(along - (lo + ilong * long_size), 0.0)
    return simulate_cells(rng, detector.volume_id[layer], barrel, x, y, z, px, py, pz, u0, v0)


def _checked_particles(particles: pd.DataFrame) -> pd.DataFrame:
    """A fresh particles table with TrackML dtypes; InputError for missing columns or bad ids."""
    missing = [c for c in ("particle_id", "vx", "vy", "vz", "px", "py", "pz", "q") if c not in particles]
    if missing:
        raise InputError(f"particles table lacks column(s) {', '.join(missing)}")
    pid = particles["particle_id"].to_numpy()
    if np.any(pid <= 0) or len(np.unique(pid)) != len(pid):
        raise InputError("particles table: particle_id must be positive and unique (0 marks noise)")
    return particles_frame(**{c: particles[c].to_numpy() for c in particles.columns if c in PARTICLES_COLUMNS})


def simulate_events(out_dir: str | os.PathLike, n_events: int, config=None, seed: int = 0, *,
                    particles: pd.DataFrame | None = None, first_event_id: int = 1000,
                    compress: bool = False, detector: Detector | None = None, progress: bool = False,
                    toy=None) -> list[Path]:
    """Simulates `n_events` events and writes each in TrackML CSV format under `out_dir`.

    Event k uses `event_rng(seed, k)` and is named event<first_event_id + k>; with `particles`
    every event re-simulates those particles (new scattering, efficiency and noise draws),
    otherwise each event draws its own from the generator. `toy` (a ToyConfig ConfigDict from
    gnntrack.detector.toy) replaces the detector simulation by the planes toy.
    Returns the written paths (hits, truth, particles per event).
    """
    config = config if config is not None else default_simulation_config()
    if toy is None:
        validate_simulation_config(config)
    paths: list[Path] = []
    iterator: Sequence[int] | object = range(int(n_events))
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc="simulate", unit="event")
    for k in iterator:
        rng = event_rng(seed, k)
        event_id = int(first_event_id) + k
        if toy is not None:
            event = simulate_toy_event(rng, toy, event_id=event_id)
        else:
            event_particles = particles if particles is not None else generate_particles(rng, config)
            event = simulate_event(event_particles, rng, config, detector, event_id=event_id)
        paths.extend(write_event(event, out_dir, compress=compress))
    return paths
