"""Primary particles: a minimum-bias-like generator and a reader for TrackML `particles.csv`.

Both return a pandas DataFrame with the TrackML particle columns and dtypes
(`gnntrack.io.event.PARTICLES_COLUMNS`): particle_id, particle_type, vx, vy, vz (mm),
px, py, pz (GeV), q (e), nhits (0 here; the simulation fills it).

Generator model (per event):
  * pileup mode: Poisson(mu) collisions, each with Poisson(particles_per_collision) charged
    particles (mu = 200 -> ~10k particles); fixed-count mode: `n_particles` particles spread over
    ceil(n_particles / particles_per_collision) collisions;
  * collision vertex: Gaussian, sigma_z = vertex_sigma_z (55 mm), sigma_x = sigma_y = vertex_sigma_xy;
  * pT: soft component pt_min + Gamma(2, pt_soft_scale) plus, with probability hard_fraction, a
    power-law tail dN/dpT ~ pT^-hard_power above hard_pt_min (capped at pt_max);
  * eta uniform in [-eta_max, eta_max] (flat dN/deta plateau), phi uniform, charge +-1;
  * species: pions / kaons / protons (85 / 10 / 5 %), PDG code signed by the charge.
Particle ids follow TrackML's bit layout: vertex id in bits 52-63, primary id in bits 36-51
(generation, secondary id and process are 0), so every id is nonzero and unique.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from gnntrack.errors import ConfigError, InputError
from gnntrack.io.event import PARTICLES_COLUMNS, PARTICLES_OPTIONAL
from gnntrack.io.trackml import read_csv_file

# |PDG code| -> mass in GeV (unknown codes are treated as pions).
MASSES = {11: 0.000511, 13: 0.10566, 211: 0.13957, 321: 0.49368, 2212: 0.93827}
PION_MASS = MASSES[211]
_SPECIES = np.array([211, 321, 2212], np.int32)
_SPECIES_FRACTIONS = np.array([0.85, 0.10, 0.05])
MAX_VERTICES = 2047          # 11 usable bits of the 12-bit TrackML vertex field (keeps ids positive)
MAX_PRIMARIES = 65535        # 16-bit TrackML primary field


def encode_particle_id(vertex: np.ndarray, primary: np.ndarray) -> np.ndarray:
    """int64 [N] TrackML-style particle ids from 1-based vertex and primary numbers."""
    return (np.asarray(vertex, np.int64) << 52) | (np.asarray(primary, np.int64) << 36)


def particle_masses(particle_type: np.ndarray) -> np.ndarray:
    """float64 [N] masses (GeV) from signed PDG codes; unknown codes -> pion mass."""
    codes = np.abs(np.asarray(particle_type, np.int64))
    mass = np.full(codes.shape, PION_MASS)
    for code, m in MASSES.items():
        mass[codes == code] = m
    return mass


def generate_particles(rng: np.random.Generator, config) -> pd.DataFrame:
    """Draws one event's primary particles (see the module docstring for the model).

    Args:
      rng: numpy Generator (the event's stream).
      config: simulation ConfigDict (`default_simulation_config()`), keys pileup, n_particles,
        particles_per_collision, pt_min, pt_soft_scale, hard_fraction, hard_pt_min, hard_power,
        pt_max, eta_max, vertex_sigma_xy, vertex_sigma_z.
    Returns:
      particles DataFrame [P] with TrackML columns, nhits = 0.
    """
    per = float(config.particles_per_collision)
    if int(config.n_particles) > 0:
        n = int(config.n_particles)
        n_vtx = int(min(MAX_VERTICES, max(1, np.ceil(n / max(per, 1.0)))))
        vertex_of = np.sort(rng.integers(0, n_vtx, size=n))
    else:
        if config.pileup <= 0:
            raise ConfigError("simulation.pileup must be > 0 when simulation.n_particles is 0")
        n_vtx = max(1, int(rng.poisson(config.pileup)))
        if n_vtx > MAX_VERTICES:
            raise ConfigError(f"simulation.pileup={config.pileup} gives more than {MAX_VERTICES} collisions")
        counts = rng.poisson(per, size=n_vtx)
        vertex_of = np.repeat(np.arange(n_vtx), counts)
        n = len(vertex_of)
    # Primary number within its vertex (1-based): position in the sorted vertex_of array.
    starts = np.searchsorted(vertex_of, np.arange(n_vtx))
    primary = np.arange(n) - starts[vertex_of] + 1
    if n and primary.max() > MAX_PRIMARIES:
        raise ConfigError(f"more than {MAX_PRIMARIES} particles in one collision; "
                          "raise simulation.particles_per_collision")

    vtx = np.stack([rng.normal(0.0, config.vertex_sigma_xy, n_vtx),
                    rng.normal(0.0, config.vertex_sigma_xy, n_vtx),
                    rng.normal(0.0, config.vertex_sigma_z, n_vtx)], axis=1)
    pt = sample_pt(rng, n, config)
    eta = rng.uniform(-config.eta_max, config.eta_max, n)
    phi = rng.uniform(-np.pi, np.pi, n)
    q = np.where(rng.random(n) < 0.5, -1, 1).astype(np.int32)
    species = _SPECIES[np.searchsorted(np.cumsum(_SPECIES_FRACTIONS), rng.random(n) * 0.999999)]
    v = vtx[vertex_of]
    return particles_frame(
        particle_id=encode_particle_id(vertex_of + 1, primary), particle_type=species * q,
        vx=v[:, 0], vy=v[:, 1], vz=v[:, 2],
        px=pt * np.cos(phi), py=pt * np.sin(phi), pz=pt * np.sinh(eta), q=q)


def sample_pt(rng: np.random.Generator, n: int, config) -> np.ndarray:
    """float64 [n] transverse momenta (GeV): soft Gamma(2) spectrum plus a power-law hard tail."""
    soft = config.pt_min + rng.gamma(2.0, config.pt_soft_scale, n)
    # Pareto above hard_pt_min: P(pT > x) = (x / hard_pt_min)^(1 - hard_power).
    u = rng.random(n)
    hard = config.hard_pt_min * (1.0 - u) ** (-1.0 / (config.hard_power - 1.0))
    is_hard = rng.random(n) < config.hard_fraction
    return np.minimum(np.where(is_hard, hard, soft), config.pt_max)


def particles_frame(**columns) -> pd.DataFrame:
    """A TrackML particles DataFrame with the exact dtypes (nhits defaults to 0)."""
    n = len(columns["particle_id"])
    columns.setdefault("nhits", np.zeros(n, np.int32))
    columns.setdefault("particle_type", np.zeros(n, np.int32))
    return pd.DataFrame({c: np.asarray(columns[c]).astype(t, copy=False) for c, t in PARTICLES_COLUMNS.items()})


_REQUIRED = tuple(c for c in PARTICLES_COLUMNS if c not in PARTICLES_OPTIONAL + ("nhits",))


def read_particles_file(path: str | os.PathLike) -> pd.DataFrame:
    """Reads a TrackML `particles.csv` (or .csv.gz) as simulation input.

    Accepts both TrackML variants (with and without `particle_type`); `nhits` is optional and
    ignored (the simulation recomputes it). Raises InputError naming the file and column for a
    missing file, missing columns, non-numeric or NaN values, zero or duplicate particle ids.
    Returns a DataFrame with the TrackML particle columns (particle_type 0 where absent).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError(f"particles file not found: {path}")
    raw = read_csv_file(path)  # InputError naming the file if empty, truncated, corrupt or malformed
    missing = [c for c in _REQUIRED if c not in raw.columns]
    if missing:
        raise InputError(f"particles file {path}: missing column(s) {', '.join(missing)} "
                         f"(needs {', '.join(_REQUIRED)}; particle_type and nhits optional)")
    columns = {}
    for name in _REQUIRED + tuple(c for c in PARTICLES_OPTIONAL if c in raw.columns):
        values = pd.to_numeric(raw[name], errors="coerce")
        bad = values.isna().to_numpy() | ~np.isfinite(values.to_numpy(np.float64, na_value=np.nan))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InputError(f"particles file {path}: column {name} has a missing, infinite or non-numeric value "
                             f"(data row {row + 1}: {raw[name].iloc[row]!r})")
        columns[name] = values.to_numpy()
    pid = columns["particle_id"]
    if np.any(pid != np.round(pid)) or np.any(pid <= 0):
        raise InputError(f"particles file {path}: column particle_id must hold positive integers")
    pid = raw["particle_id"].to_numpy().astype(np.int64)  # exact, not via float
    columns["particle_id"] = pid
    if len(np.unique(pid)) != len(pid):
        raise InputError(f"particles file {path}: column particle_id has duplicate values")
    if np.any(np.abs(columns["q"]) > 10):
        raise InputError(f"particles file {path}: column q has implausible charges (|q| > 10)")
    if len(pid) == 0:
        raise InputError(f"particles file {path} has no particles")
    return particles_frame(**columns)
