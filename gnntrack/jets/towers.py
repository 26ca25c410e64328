"""A simple detector for jet studies: tracks plus calorimeter towers, vectorised over many events.

    visible = Particles(event, px, py, pz, e, charged)   # flat final-state particles of a batch
    seen = tower_response(visible, rng)                  # Particles the detector reports

- Tracks: charged particles with pT > `track_pt_min` (0.5 GeV) and |eta| < `track_eta_max` (2.5)
  keep their true four-momentum (a tracker's ~1 % resolution at these momenta is ignored).
- Towers: every other visible particle (neutrals, soft or forward charged particles) is summed
  into (eta, phi) cells of 0.1 x 2 pi / 63 (~0.1) over |eta| < `cell_eta_max` (4.9). A cell's
  summed energy is smeared with sigma_E / E = 50 % / sqrt(E / GeV) (+) 3 % (added in quadrature),
  truncated at 0, and the cell is kept if its E_T > `cell_et_min` (1 GeV); a kept cell is a
  massless four-vector at the cell centre.
Units: GeV. Neutrinos are not visible; the caller leaves them out.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class TowerDetector:
    """Thresholds (GeV), acceptances and the calorimeter resolution sigma_E / E = a / sqrt(E) (+) c."""

    track_pt_min: float = 0.5
    track_eta_max: float = 2.5
    cell_eta_max: float = 4.9
    cell_deta: float = 0.1
    n_phi: int = 63  # 2 pi / 63 ~ 0.0997: the closest whole number of 0.1-wide phi cells
    cell_et_min: float = 1.0
    stochastic: float = 0.5
    constant: float = 0.03


@dataclasses.dataclass
class Particles:
    """Flat particles of a batch of events, sorted by event.

    Attributes:
      event: int64 [N], the event (0 ... n_events - 1) each particle belongs to, non-decreasing.
      p: float64 [N, 4], (px, py, pz, E) in GeV.
      charged: bool [N] (only used by the detector; False for the towers it returns).
    """

    event: np.ndarray
    p: np.ndarray
    charged: np.ndarray

    def __len__(self) -> int:
        return int(self.event.shape[0])

    def take(self, keep: np.ndarray) -> "Particles":
        return Particles(self.event[keep], self.p[keep], self.charged[keep])


def pt_eta_phi(p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """pT, pseudorapidity and azimuth of four-vectors p [..., 4] = (px, py, pz, E).

    Pseudorapidity from arcsinh(pz / pT) (finite for pT > 0; +-inf along the beam)."""
    px, py, pz = p[..., 0], p[..., 1], p[..., 2]
    pt = np.hypot(px, py)
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.arcsinh(pz / pt)
    return pt, eta, np.arctan2(py, px)


def tower_response(particles: Particles, rng: np.random.Generator,
                   detector: TowerDetector = TowerDetector()) -> Particles:
    """The tracks and towers `detector` reports for the visible particles of a batch of events.

    Returns Particles sorted by event (tracks first, then cells in (eta, phi) order within an
    event); the random draws depend only on the input, so the same rng state gives the same output.
    """
    pt, eta, phi = pt_eta_phi(particles.p)
    track = particles.charged & (pt > detector.track_pt_min) & (np.abs(eta) < detector.track_eta_max)
    calo = ~track & (np.abs(eta) < detector.cell_eta_max)
    tracks = particles.take(track)
    towers = _towers(particles.event[calo], particles.p[calo, 3], eta[calo], phi[calo], rng, detector)
    merged = Particles(np.concatenate([tracks.event, towers.event]), np.concatenate([tracks.p, towers.p]),
                       np.concatenate([tracks.charged, towers.charged]))
    return merged.take(np.argsort(merged.event, kind="stable"))


def _towers(event, energy, eta, phi, rng, detector) -> Particles:
    """Cells hit by (event, energy, eta, phi) deposits, smeared and above threshold."""
    n_eta = int(round(2 * detector.cell_eta_max / detector.cell_deta))
    ieta = np.clip(((eta + detector.cell_eta_max) / detector.cell_deta).astype(np.int64), 0, n_eta - 1)
    dphi = 2 * np.pi / detector.n_phi
    iphi = np.clip(((phi + np.pi) / dphi).astype(np.int64), 0, detector.n_phi - 1)
    key = (event.astype(np.int64) * n_eta + ieta) * detector.n_phi + iphi
    cells, inverse = np.unique(key, return_inverse=True)  # sorted: by event, then eta, then phi
    summed = np.bincount(inverse, weights=energy, minlength=cells.size)
    sigma = np.hypot(detector.stochastic * np.sqrt(np.maximum(summed, 1e-12)), detector.constant * summed)
    smeared = np.maximum(summed + sigma * rng.standard_normal(cells.size), 0.0)
    cell_event, rest = np.divmod(cells, n_eta * detector.n_phi)
    c_ieta, c_iphi = np.divmod(rest, detector.n_phi)
    c_eta = -detector.cell_eta_max + (c_ieta + 0.5) * detector.cell_deta
    c_phi = -np.pi + (c_iphi + 0.5) * dphi
    et = smeared / np.cosh(c_eta)
    keep = et > detector.cell_et_min
    et, c_eta, c_phi = et[keep], c_eta[keep], c_phi[keep]
    p = np.stack([et * np.cos(c_phi), et * np.sin(c_phi), et * np.sinh(c_eta), smeared[keep]], axis=1)
    return Particles(cell_event[keep], p, np.zeros(p.shape[0], bool))
