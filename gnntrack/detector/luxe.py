"""A LUXE-like positron tracker as data, and its event (bunch-crossing) simulation.

    config = default_luxe_config(); config.n_particles = 70_000
    event = simulate_luxe_event(event_rng(seed, 0), config, event_id=1000)
    detector = luxe_detector()            # its layer table for the graph builder

Geometry (mm; beam along +z from the interaction point at the origin; `LUXE` below):
  * a dipole of field `bfield` (tesla, along -y, so positrons bend towards +x) between
    z = 1434 and 2672;
  * four tracker layers L = 0..3 at z = 3955.9 + 100 L, each two overlapping staves of nine
    1024 x 512-pixel ALPIDE chips: stave A at z_L over 52.8 < x < 323.5, stave B 6 mm further
    in z over 283.6 < x < 554.3, both |y| < 6.88. A chip is 1024 x 29.24 um (x) by
    512 x 26.88 um (y); chips sit every 30.08 mm along the stave (78 um dead gaps).
Each stave is one layer of the TrackML tables (volume_id 40, layer_id 2 (A0), 4 (B0), 6 (A1),
..., 16 (B3)), module_id is the chip (1..9 from small x), so everything downstream reads the
crossing as any event and a track through a stave overlap has two hits on two layers.

Physics (vectorised over positrons; one Python step per stave plane):
  * positrons from a Gaussian beam spot (sigma `beam_sigma`, z = 0) with Gaussian angles
    (`angle_sigma_x`, `angle_sigma_y`) and energy from a falling exponential dN/dE ~
    exp(-E / energy_scale) truncated to [energy_min, energy_max] GeV;
  * straight lines to the magnet; in it the exact arc of the x-z projection (radius
    R[m] = p_xz[GeV] / (0.3 B[T])), y linear in the arc length; positrons that curl back are lost;
  * straight lines between staves; every stave crossed (inside its envelope) scatters the
    positron (Highland, x_over_x0 per stave scaled by the path length, two projected angles);
  * a crossing inside a chip's active area leaves a hit with probability `efficiency`, measured at
    the centre of the pixel it crosses (resolution pitch / sqrt(12), about 8 um);
  * noise: each of the 37.7 M pixels fires with probability `noise_per_pixel` per crossing;
  * truth weights: uniform over signal hits (the TrackML pT weight is meaningless here: the
    positrons fly along the beam), noise 0.
Units: mm, GeV, tesla, radians.
"""

from __future__ import annotations

import os
from pathlib import Path

import ml_collections
import numpy as np
import pandas as pd
from tqdm import tqdm

from gnntrack.detector.geometry import Detector
from gnntrack.detector.particles import MAX_PRIMARIES, MASSES, encode_particle_id, particles_frame
from gnntrack.detector.simulate import event_rng
from gnntrack.errors import ConfigError
from gnntrack.io.event import HITS_COLUMNS, TRUTH_COLUMNS, Event
from gnntrack.io.trackml import write_event
from gnntrack.keys import check_known_keys

__all__ = ["LUXE", "LUXE_VOLUME_ID", "default_luxe_config", "validate_luxe_config", "luxe_detector",
           "stave_planes", "generate_positrons", "simulate_luxe_event", "simulate_luxe_events"]

LUXE_VOLUME_ID = 40
POSITRON_PDG = -11
ELECTRON_MASS = MASSES[11]
GEV_PER_TESLA_METRE = 0.299792458

# The detector as data (mm). Staves are listed per layer as (x_min, x_max, z offset from z_L).
LUXE = dict(
    magnet_z=(1434.0, 2672.0),
    layer_z0=3955.9,
    layer_spacing=100.0,
    n_layers=4,
    staves=((52.8, 323.5, 0.0), (283.6, 554.3, 6.0)),
    half_height=6.88,
    chips_per_stave=9,
    pixels=(1024, 512),               # columns along x, rows along y
    pixel_pitch=(0.02924, 0.02688),   # mm
    x_over_x0=0.003,                  # per stave at normal incidence (ALPIDE inner-barrel-like stave)
)


def default_luxe_config() -> ml_collections.ConfigDict:
    """Default crossing settings (GeV, mm, rad, tesla).

    n_particles: positrons per bunch crossing. energy_min, energy_max, energy_scale: truncated
    exponential spectrum. angle_sigma_x, angle_sigma_y: Gaussian emission angles (rad).
    beam_sigma: Gaussian beam-spot size in x and y (mm). bfield: dipole field (T).
    multiple_scattering: switch. efficiency: probability that a crossing of an active pixel
    leaves a hit. noise_per_pixel: fake-hit probability per pixel and crossing.
    """
    c = ml_collections.ConfigDict()
    c.n_particles = 70_000
    c.energy_min = 1.0
    c.energy_max = 14.0
    c.energy_scale = 3.5
    c.angle_sigma_x = 0.5e-3
    c.angle_sigma_y = 0.5e-3
    c.beam_sigma = 0.005
    c.bfield = 0.95
    c.multiple_scattering = True
    c.efficiency = 0.99
    c.noise_per_pixel = 1e-4
    return c


def validate_luxe_config(config, where: str = "luxe") -> None:
    """Raises ConfigError naming the key for unknown keys or out-of-range values."""
    check_known_keys(config, default_luxe_config(), where)
    checks = [
        ("n_particles", config.n_particles >= 1, "must be >= 1"),
        ("energy_min", config.energy_min > 0, "must be > 0 (GeV)"),
        ("energy_max", config.energy_max > config.energy_min, "must be > energy_min"),
        ("energy_scale", config.energy_scale > 0, "must be > 0 (GeV)"),
        ("angle_sigma_x", config.angle_sigma_x >= 0, "must be >= 0 (rad)"),
        ("angle_sigma_y", config.angle_sigma_y >= 0, "must be >= 0 (rad)"),
        ("beam_sigma", config.beam_sigma >= 0, "must be >= 0 (mm)"),
        ("bfield", config.bfield > 0, "must be > 0 (tesla)"),
        ("efficiency", 0.0 <= config.efficiency <= 1.0, "must be in [0, 1]"),
        ("noise_per_pixel", 0.0 <= config.noise_per_pixel <= 0.01, "must be in [0, 0.01]"),
    ]
    for key, ok, msg in checks:
        if not ok:
            raise ConfigError(f"{where}.{key}={config[key]!r} {msg}")


def stave_planes(geometry: dict = LUXE) -> dict:
    """The staves as planes, in z order (= layer-table row order). Arrays [S] (S = 8):
    z, x_min, x_max (mm), layer (tracker layer 0..3), stave (0 = A, 1 = B)."""
    layer, stave = np.divmod(np.arange(geometry["n_layers"] * len(geometry["staves"])), len(geometry["staves"]))
    spec = np.asarray(geometry["staves"], np.float64)[stave]
    return dict(z=geometry["layer_z0"] + geometry["layer_spacing"] * layer + spec[:, 2],
                x_min=spec[:, 0], x_max=spec[:, 1], layer=layer, stave=stave)


def luxe_detector(geometry: dict = LUXE) -> Detector:
    """The staves as a `Detector` (disk-like planes at z = `position`; r extent = the stave's
    x extent, y included), so that `gnntrack.graphs.layer_map.default_layer_table` works."""
    p = stave_planes(geometry)
    n = len(p["z"])
    full = lambda v, t=np.float64: np.full(n, v, t)  # noqa: E731
    pitch = np.asarray(geometry["pixel_pitch"])
    return Detector(
        volume_id=full(LUXE_VOLUME_ID, np.int32), layer_id=(2 * np.arange(1, n + 1)).astype(np.int32),
        is_barrel=np.zeros(n, bool), position=p["z"], min_extent=p["x_min"],
        max_extent=np.hypot(p["x_max"], geometry["half_height"]),
        n_phi=full(1, np.int32), n_long=full(geometry["chips_per_stave"], np.int32),
        sigma_across=full(pitch[1] / np.sqrt(12)), sigma_along=full(pitch[0] / np.sqrt(12)),
        x_over_x0=full(geometry["x_over_x0"]), efficiency=full(1.0), half_thickness=full(1.0),
        pixel_volumes=(LUXE_VOLUME_ID,))


# ------------------------------------------------------------------------------------- positrons

def generate_positrons(rng: np.random.Generator, config) -> pd.DataFrame:
    """The crossing's positrons as a TrackML particles table (ids 1-based, q = +1, PDG -11)."""
    n = int(config.n_particles)
    lo, hi, scale = float(config.energy_min), float(config.energy_max), float(config.energy_scale)
    # inverse CDF of exp(-E / scale) on [lo, hi]
    energy = lo - scale * np.log1p(-rng.random(n) * -np.expm1(-(hi - lo) / scale))
    p = np.sqrt(np.maximum(energy ** 2 - ELECTRON_MASS ** 2, 0.0))
    tx = rng.normal(0.0, config.angle_sigma_x, n)
    ty = rng.normal(0.0, config.angle_sigma_y, n)
    pz = p / np.sqrt(1.0 + tx ** 2 + ty ** 2)
    vx, vy = rng.normal(0.0, config.beam_sigma, (2, n))
    index = np.arange(n)
    return particles_frame(
        particle_id=encode_particle_id(1 + index // MAX_PRIMARIES, 1 + index % MAX_PRIMARIES),
        particle_type=np.full(n, POSITRON_PDG), vx=vx, vy=vy, vz=np.zeros(n),
        px=pz * tx, py=pz * ty, pz=pz, q=np.ones(n, np.int32), nhits=np.zeros(n, np.int32))


# ----------------------------------------------------------------------------------- propagation

def through_magnet(x, y, tx, ty, p, bfield: float, geometry: dict = LUXE):
    """Positrons at the magnet entry -> at its exit. Arrays [P]: x, y (mm), tx = dx/dz,
    ty = dy/dz, p (GeV). Returns x, y, tx, ty at the exit and a bool mask of those that get
    through (the others curl back inside the field)."""
    z1, z2 = geometry["magnet_z"]
    sin_a1 = tx / np.sqrt(1.0 + tx ** 2)                     # angle of the x-z projection from +z
    p_xz = p * np.sqrt((1.0 + tx ** 2) / (1.0 + tx ** 2 + ty ** 2))
    radius = 1000.0 * p_xz / (GEV_PER_TESLA_METRE * bfield)   # mm
    sin_a2 = sin_a1 + (z2 - z1) / radius                    # d(sin a) = dz / R along the arc
    through = sin_a2 < 1.0
    sin_a2 = np.minimum(sin_a2, 1.0 - 1e-12)
    a1, a2 = np.arcsin(sin_a1), np.arcsin(sin_a2)
    x = x + radius * (np.cos(a1) - np.cos(a2))
    dy_ds = ty / np.sqrt(1.0 + tx ** 2)                      # dy per unit x-z arc length
    y = y + dy_ds * radius * (a2 - a1)
    return x, y, np.tan(a2), dy_ds / np.cos(a2), through


def _highland(p, x_over_x0):
    """Projected multiple-scattering angle (rad) of a positron (beta = 1) of momentum p (GeV)."""
    return 0.0136 / p * np.sqrt(x_over_x0) * (1.0 + 0.038 * np.log(x_over_x0))


def propagate_luxe(particles: pd.DataFrame, rng: np.random.Generator, config, geometry: dict = LUXE):
    """Follows every positron through magnet and staves. Returns the recorded crossings as a dict
    of arrays [H]: particle (row), plane (stave row), x, y, z (true, mm), px, py, pz (GeV)."""
    planes = stave_planes(geometry)
    x = particles["vx"].to_numpy(np.float64)
    y = particles["vy"].to_numpy(np.float64)
    px, py, pz = (particles[c].to_numpy(np.float64) for c in ("px", "py", "pz"))
    p = np.sqrt(px ** 2 + py ** 2 + pz ** 2)
    tx, ty = px / pz, py / pz
    z1 = geometry["magnet_z"][0]
    x, y = x + tx * z1, y + ty * z1                          # vertex z is 0
    x, y, tx, ty, through = through_magnet(x, y, tx, ty, p, config.bfield, geometry)
    live = np.flatnonzero(through)
    x, y, tx, ty, p = x[live], y[live], tx[live], ty[live], p[live]
    z = geometry["magnet_z"][1]
    active_length = geometry["pixels"][0] * geometry["pixel_pitch"][0]
    chip_pitch = (planes["x_max"] - planes["x_min"]) / geometry["chips_per_stave"]
    half_h = geometry["half_height"]
    out = []
    for k in range(len(planes["z"])):
        x, y = x + tx * (planes["z"][k] - z), y + ty * (planes["z"][k] - z)
        z = planes["z"][k]
        on_stave = (x >= planes["x_min"][k]) & (x < planes["x_max"][k]) & (np.abs(y) < half_h)
        u = x - planes["x_min"][k]
        active = on_stave & (u - np.floor(u / chip_pitch[k]) * chip_pitch[k] < active_length)
        recorded = np.flatnonzero(active & (rng.random(len(x)) < config.efficiency))
        pz_k = p[recorded] / np.sqrt(1.0 + tx[recorded] ** 2 + ty[recorded] ** 2)
        out.append((live[recorded], np.full(len(recorded), k), x[recorded], y[recorded],
                    np.full(len(recorded), z), pz_k * tx[recorded], pz_k * ty[recorded], pz_k))
        if config.multiple_scattering:
            s = np.flatnonzero(on_stave)
            path = geometry["x_over_x0"] * np.sqrt(1.0 + tx[s] ** 2 + ty[s] ** 2)
            theta0 = _highland(p[s], path)
            kx, ky = rng.normal(size=(2, len(s))) * theta0
            # small kicks added to the angles of the two projections
            tx[s] = np.tan(np.arctan(tx[s]) + kx)
            ty[s] = np.tan(np.arctan(ty[s]) + ky)
    names = ("particle", "plane", "x", "y", "z", "px", "py", "pz")
    return {name: np.concatenate(col) for name, col in zip(names, zip(*out))}


def digitise(plane, x, y, geometry: dict = LUXE):
    """Pixel-centre positions and chip numbers of points on active pixels. Arrays [H]:
    plane (stave row), x, y (mm). Returns x, y (mm) and chip (0-based, from small x)."""
    planes = stave_planes(geometry)
    pitch_x, pitch_y = geometry["pixel_pitch"]
    x_min = planes["x_min"][plane]
    chip_pitch = (planes["x_max"][plane] - x_min) / geometry["chips_per_stave"]
    chip = np.floor((x - x_min) / chip_pitch).astype(np.int64)
    column = np.floor((x - x_min - chip * chip_pitch) / pitch_x)
    row = np.floor((y + geometry["half_height"]) / pitch_y)
    return (x_min + chip * chip_pitch + (column + 0.5) * pitch_x,
            -geometry["half_height"] + (row + 0.5) * pitch_y, chip)


def noise_pixels(rng: np.random.Generator, rate: float, geometry: dict = LUXE):
    """Fired noise pixels: Poisson(rate x all pixels) of them, uniform over all pixels of all
    chips. Returns plane (stave row), x, y (pixel centres, mm), chip."""
    n_planes = geometry["n_layers"] * len(geometry["staves"])
    n_col, n_row = geometry["pixels"]
    per_plane = geometry["chips_per_stave"] * n_col * n_row
    n = rng.poisson(rate * per_plane * n_planes)
    pixel = rng.integers(0, per_plane * n_planes, n)
    plane, rest = np.divmod(pixel, per_plane)
    chip, rest = np.divmod(rest, n_col * n_row)
    column, row = np.divmod(rest, n_row)
    planes = stave_planes(geometry)
    chip_pitch = (planes["x_max"][plane] - planes["x_min"][plane]) / geometry["chips_per_stave"]
    pitch_x, pitch_y = geometry["pixel_pitch"]
    x = planes["x_min"][plane] + chip * chip_pitch + (column + 0.5) * pitch_x
    y = -geometry["half_height"] + (row + 0.5) * pitch_y
    return plane, x, y, chip


# ------------------------------------------------------------------------------------------ event

def simulate_luxe_event(rng: np.random.Generator, config=None, event_id: int = 0,
                        geometry: dict = LUXE) -> Event:
    """One bunch crossing in TrackML tables: hits [N] (sorted by layer, chip; random inside a
    chip), truth [N] (noise: particle_id 0), particles [P] with nhits filled."""
    config = config if config is not None else default_luxe_config()
    validate_luxe_config(config)
    particles = generate_positrons(rng, config)
    c = propagate_luxe(particles, rng, config, geometry)
    mx, my, chip = digitise(c["plane"], c["x"], c["y"], geometry)
    n_plane, nx, ny, n_chip = noise_pixels(rng, config.noise_per_pixel, geometry)
    n_sig, n_noise = len(mx), len(nx)
    planes = stave_planes(geometry)
    plane = np.concatenate([c["plane"], n_plane])
    x, y = np.concatenate([mx, nx]), np.concatenate([my, ny])
    z = planes["z"][plane]
    module = np.concatenate([chip, n_chip]) + 1
    layer_id = 2 * (plane + 1)
    shuffle = rng.permutation(len(plane))
    order = shuffle[np.lexsort((module[shuffle], layer_id[shuffle]))]
    hits = pd.DataFrame({
        "hit_id": np.arange(1, len(order) + 1), "x": x[order], "y": y[order], "z": z[order],
        "volume_id": np.full(len(order), LUXE_VOLUME_ID), "layer_id": layer_id[order],
        "module_id": module[order]}).astype(HITS_COLUMNS)
    zeros = np.zeros(n_noise)
    p_ids = particles["particle_id"].to_numpy(np.int64)
    weight = np.r_[np.full(n_sig, 1.0 / max(n_sig, 1)), zeros]
    truth = pd.DataFrame({
        "hit_id": hits["hit_id"].to_numpy(),
        "particle_id": np.r_[p_ids[c["particle"]], np.zeros(n_noise, np.int64)][order],
        "tx": np.r_[c["x"], nx][order], "ty": np.r_[c["y"], ny][order], "tz": z[order],
        "tpx": np.r_[c["px"], zeros][order], "tpy": np.r_[c["py"], zeros][order],
        "tpz": np.r_[c["pz"], zeros][order], "weight": weight[order]}).astype(TRUTH_COLUMNS)
    particles["nhits"] = np.bincount(c["particle"], minlength=len(particles)).astype(np.int32)
    return Event(event_id=int(event_id), hits=hits, truth=truth, particles=particles)


def simulate_luxe_events(out_dir: str | os.PathLike, n_events: int, config=None, seed: int = 0, *,
                         first_event_id: int = 1000, compress: bool = False,
                         progress: bool = False) -> list[Path]:
    """Simulates `n_events` crossings and writes each as TrackML CSV under `out_dir`; crossing k
    uses `event_rng(seed, k)` (byte-identical files for the same arguments). Returns the paths."""
    config = config if config is not None else default_luxe_config()
    validate_luxe_config(config)
    paths: list[Path] = []
    for k in tqdm(range(int(n_events)), desc="simulate luxe", unit="crossing", disable=not progress):
        event = simulate_luxe_event(event_rng(seed, k), config, event_id=int(first_event_id) + k)
        paths.extend(write_event(event, out_dir, compress=compress))
    return paths
