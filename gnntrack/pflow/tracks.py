"""Parametrised tracking and where particles meet the calorimeters (vectorised numpy).

Particles start at the origin in a solenoid field B along +z: a charge q with transverse
momentum pT [GeV] moves on a helix of radius rho = pT / (0.3 B) metres and turns clockwise (seen
from +z) for q > 0. A calorimeter is a cylinder of radius R closed by endcaps at |z| = Z; a
charged particle reaches it within its first half turn, or not at all (a looper).
Units: GeV, metres, radians.
"""

from __future__ import annotations

import dataclasses

import ml_collections
import numpy as np

from gnntrack.pflow.generate import NEUTRINOS, GenParticles

GEV_PER_TESLA_METRE = 0.3  # pT [GeV] = 0.3 B [T] rho [m] for a unit charge


def pt_eta_phi(p4: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pT, eta, phi) of four-momenta p4 [M, 4] = (px, py, pz, E); eta is finite (|eta| <= ~20)."""
    pt = np.hypot(p4[:, 0], p4[:, 1])
    eta = np.arcsinh(p4[:, 2] / np.maximum(pt, 1e-9))
    return pt, eta, np.arctan2(p4[:, 1], p4[:, 0])


def particle_class(pid: np.ndarray, charge: np.ndarray) -> np.ndarray:
    """int32 [M] index into PARTICLE_CLASSES (0 = none for neutrinos)."""
    apid = np.abs(pid)
    cls = np.where(charge != 0, 1, 2)  # charged / neutral hadron
    cls = np.where(apid == 22, 3, cls)
    cls = np.where(apid == 11, 4, cls)
    cls = np.where(apid == 13, 5, cls)
    return np.where(np.isin(apid, NEUTRINOS), 0, cls).astype(np.int32)


def calorimeter_impact(pt: np.ndarray, eta: np.ndarray, phi: np.ndarray, charge: np.ndarray, *,
                       radius: float, z_end: float, bfield: float) -> tuple[np.ndarray, np.ndarray]:
    """Where particles from the origin cross the calorimeter surface (cylinder radius `radius`,
    endcaps at |z| = `z_end`).

    Returns (reached bool [M], xyz float64 [M, 3]); xyz is meaningless where not reached."""
    sinh = np.sinh(eta)
    charged = charge != 0
    rho = pt / (GEV_PER_TESLA_METRE * bfield)
    # turning angle to reach the barrel radius (0 for neutrals; nan when the helix is too small)
    with np.errstate(invalid="ignore", divide="ignore"):
        alpha_barrel = np.where(charged, 2 * np.arcsin(radius / (2 * rho)), 0.0)
        path_barrel = np.where(charged, rho * alpha_barrel, radius)  # transverse path length
        barrel = np.isfinite(alpha_barrel) & (np.abs(path_barrel * sinh) <= z_end)
        alpha_end = np.where(charged, z_end / (rho * np.abs(sinh)), 0.0)
        r_end = np.where(charged, 2 * rho * np.sin(alpha_end / 2), z_end / np.abs(sinh))
    endcap = ~barrel & (alpha_end <= np.pi) & (sinh != 0)
    alpha = np.where(barrel, alpha_barrel, alpha_end)
    r = np.where(barrel, radius, r_end)
    z = np.where(barrel, path_barrel * sinh, np.sign(sinh) * z_end)
    phi_at = phi - np.sign(charge) * np.nan_to_num(alpha) / 2
    reached = barrel | endcap
    xyz = np.stack([r * np.cos(phi_at), r * np.sin(phi_at), z], axis=1)
    return reached, np.where(reached[:, None], xyz, 0.0)


def direction(xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(eta, phi) of points xyz [M, 3] seen from the origin."""
    r = np.hypot(xyz[:, 0], xyz[:, 1])
    return np.arcsinh(xyz[:, 2] / np.maximum(r, 1e-9)), np.arctan2(xyz[:, 1], xyz[:, 0])


@dataclasses.dataclass
class Tracks:
    """Reconstructed tracks, one per reconstructed charged particle.

    Attributes:
      particle: int64 [T] index of the generator particle.
      pt, eta, phi, p: float64 [T] measured kinematics (GeV, radians).
      charge: int8 [T] measured charge (the sign of the measured q/pT).
      chi2: float64 [T] chi2 / ndf of the fit.
      xyz: float64 [T, 3] the measured helix's crossing of the ECAL surface (metres; zero for a
        looper that does not reach it).
    """

    particle: np.ndarray
    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    p: np.ndarray
    charge: np.ndarray
    chi2: np.ndarray
    xyz: np.ndarray

    def __len__(self) -> int:
        return len(self.particle)


def reconstruct_tracks(particles: GenParticles, rng: np.random.Generator,
                       config: ml_collections.ConfigDict) -> Tracks:
    """Charged particles in the tracker's acceptance, kept with their efficiency and smeared:
    q/pT by sigma(1/pT) = sqrt((a pT)^2 + b^2) / pT (a sign flip flips the charge), eta and phi
    by `angle_sigma`."""
    t = config.tracker
    pt, eta, phi = pt_eta_phi(particles.p4)
    apid = np.abs(particles.pid)
    efficiency = np.where(apid == 13, t.efficiency_muon, np.where(apid == 11, t.efficiency_electron,
                                                                  t.efficiency_hadron))
    accepted = (particles.charge != 0) & (pt > t.pt_min) & (np.abs(eta) < t.eta_max)
    kept = np.flatnonzero(accepted & (rng.random(len(pt)) < efficiency))
    pt, eta, phi, q = pt[kept], eta[kept], phi[kept], particles.charge[kept].astype(np.float64)
    sigma_inv_pt = np.hypot(t.sigma_pt_a * pt, t.sigma_pt_b) / pt
    q_over_pt = q / pt + sigma_inv_pt * rng.normal(size=len(kept))
    eta = eta + t.angle_sigma * rng.normal(size=len(kept))
    phi = np.angle(np.exp(1j * (phi + t.angle_sigma * rng.normal(size=len(kept)))))
    charge = np.where(q_over_pt >= 0, 1, -1).astype(np.int8)
    pt = 1.0 / np.maximum(np.abs(q_over_pt), 1e-6)
    chi2 = rng.chisquare(t.chi2_ndf, size=len(kept)) / t.chi2_ndf
    _, xyz = calorimeter_impact(pt, eta, phi, charge, radius=config.ecal.radius_m, z_end=config.ecal.z_m,
                                bfield=config.bfield)
    return Tracks(particle=kept.astype(np.int64), pt=pt, eta=eta, phi=phi, p=pt * np.cosh(eta),
                  charge=charge, chi2=chi2, xyz=xyz)
