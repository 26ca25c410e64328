"""Calorimeters: showers on (eta, phi) cell grids, noise, topological clustering (vectorised numpy).

    ecal, hcal = calorimeter_grids(config)
    deposits = shower_deposits(particles, rng, config)         # {"ecal": Deposits, "hcal": Deposits}
    cells = cell_energies(deposits["ecal"], ecal, rng)          # float64 [n_eta, n_phi], noise added
    labels = topo_cluster(cells, ecal.noise_gev, 4.0, 2.0, 0.0) # int32 [n_eta, n_phi], 0 = no cluster
    clusters = cluster_features(cells, labels, ecal)

A grid is indexed [eta bin, phi bin]; phi wraps around, eta does not. Energies in GeV.
The physics (resolutions, the ECAL/HCAL sharing of hadron showers) is stated in
gnntrack.pflow.config.
"""

from __future__ import annotations

import dataclasses

import ml_collections
import numpy as np
import scipy.sparse
from scipy.special import ndtr

from gnntrack.pflow.generate import GenParticles
from gnntrack.pflow.tracks import calorimeter_impact, direction, particle_class, pt_eta_phi

SHOWER_WINDOW = 5  # cells on a side over which one deposit is spread
MIN_CELL_FRACTION = 1e-4  # smaller shares of a deposit are dropped (they are far below the noise)


@dataclasses.dataclass(frozen=True)
class Grid:
    """An (eta, phi) cell grid: n_eta x n_phi cells of d_eta x 2 pi / n_phi over |eta| < eta_max,
    on the surface (radius_m, z_m), with Gaussian noise noise_gev per cell."""

    name: str
    eta_max: float
    n_eta: int
    n_phi: int
    radius_m: float
    z_m: float
    noise_gev: float

    @property
    def d_eta(self) -> float:
        return 2 * self.eta_max / self.n_eta

    @property
    def d_phi(self) -> float:
        return 2 * np.pi / self.n_phi

    @property
    def size(self) -> int:
        return self.n_eta * self.n_phi

    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        """(eta [n_eta], phi [n_phi]) of the cell centres."""
        return (-self.eta_max + (np.arange(self.n_eta) + 0.5) * self.d_eta,
                -np.pi + (np.arange(self.n_phi) + 0.5) * self.d_phi)


def calorimeter_grids(config: ml_collections.ConfigDict) -> tuple[Grid, Grid]:
    """(ECAL grid, HCAL grid); an HCAL cell covers cells_per_ecal_cell^2 ECAL cells."""
    e, h = config.ecal, config.hcal
    n_eta = int(round(2 * e.eta_max / e.d_eta))
    k = h.cells_per_ecal_cell
    return (Grid("ecal", e.eta_max, n_eta, e.n_phi, e.radius_m, e.z_m, e.noise_gev),
            Grid("hcal", e.eta_max, n_eta // k, e.n_phi // k, h.radius_m, h.z_m, h.noise_gev))


@dataclasses.dataclass
class Deposits:
    """Energy left by particles in cells: particle int64 [D], cell int64 [D] (flat index
    eta_bin * n_phi + phi_bin), energy float64 [D] GeV; a (particle, cell) pair may repeat."""

    particle: np.ndarray
    cell: np.ndarray
    energy: np.ndarray

    @staticmethod
    def concatenate(parts: list["Deposits"]) -> "Deposits":
        return Deposits(*(np.concatenate([getattr(p, f.name) for p in parts])
                          for f in dataclasses.fields(Deposits)))


def spread(particle: np.ndarray, eta: np.ndarray, phi: np.ndarray, energy: np.ndarray, sigma: float,
           grid: Grid) -> Deposits:
    """Spreads each deposit (centre eta, phi; `energy`) over the SHOWER_WINDOW^2 cells around it
    with a Gaussian of width `sigma` (eta-phi units), integrated over each cell and normalised to
    the window (shares below MIN_CELL_FRACTION are dropped first); cells beyond |eta| < eta_max are lost (the shower leaves the acceptance)."""
    offsets = np.arange(SHOWER_WINDOW) - SHOWER_WINDOW // 2
    i0 = np.floor((eta + grid.eta_max) / grid.d_eta).astype(np.int64)
    j0 = np.floor((phi + np.pi) / grid.d_phi).astype(np.int64)
    i, j = i0[:, None] + offsets, j0[:, None] + offsets  # [D, W]
    lo_eta = -grid.eta_max + i * grid.d_eta - eta[:, None]
    lo_phi = -np.pi + j * grid.d_phi - phi[:, None]
    w_eta = ndtr((lo_eta + grid.d_eta) / sigma) - ndtr(lo_eta / sigma)
    w_phi = ndtr((lo_phi + grid.d_phi) / sigma) - ndtr(lo_phi / sigma)
    w = w_eta[:, :, None] * w_phi[:, None, :]  # [D, W, W]
    w /= np.maximum(w.sum(axis=(1, 2), keepdims=True), 1e-300)
    w = np.where(w > MIN_CELL_FRACTION, w, 0.0)  # drop the tiny shares, then keep the energy
    w /= np.maximum(w.sum(axis=(1, 2), keepdims=True), 1e-300)
    cells = i[:, :, None] * grid.n_phi + (j[:, None, :] % grid.n_phi)
    keep = (w > 0) & ((i >= 0) & (i < grid.n_eta))[:, :, None]
    d, _, _ = np.nonzero(keep)
    return Deposits(particle=particle[d].astype(np.int64), cell=cells[keep], energy=(w * energy[:, None, None])[keep])


def _smeared(energy: np.ndarray, stochastic: float, constant: float, rng: np.random.Generator) -> np.ndarray:
    """energy (1 + N(0, stochastic/sqrt(E) (+) constant)), never negative."""
    resolution = np.hypot(stochastic / np.sqrt(np.maximum(energy, 1e-9)), constant)
    return np.maximum(energy * (1 + resolution * rng.normal(size=len(energy))), 0.0)


def shower_deposits(particles: GenParticles, rng: np.random.Generator, config: ml_collections.ConfigDict
                    ) -> dict[str, Deposits]:
    """The ECAL and HCAL deposits of all particles (see gnntrack.pflow.config for the physics)."""
    ecal_grid, hcal_grid = calorimeter_grids(config)
    e, h = config.ecal, config.hcal
    pt, eta, phi = pt_eta_phi(particles.p4)
    energy = particles.p4[:, 3]
    cls = particle_class(particles.pid, particles.charge)
    at = {}
    for grid in (ecal_grid, hcal_grid):
        reached, xyz = calorimeter_impact(pt, eta, phi, particles.charge, radius=grid.radius_m,
                                          z_end=grid.z_m, bfield=config.bfield)
        at[grid.name] = (reached,) + direction(xyz)
    em = (cls == 3) | (cls == 4)
    hadron = (cls == 1) | (cls == 2)
    muon = cls == 5
    em_energy = _smeared(energy, e.stochastic, e.constant, rng)
    had_energy = _smeared(energy, h.stochastic, h.constant, rng)
    ecal_fraction = rng.uniform(0.0, h.hadron_ecal_max, size=len(energy))
    mip = np.ones_like(energy)
    index = np.arange(len(energy))
    ecal_parts = [(em, em_energy, e.em_spread), (hadron, had_energy * ecal_fraction, h.hadron_ecal_spread),
                  (muon, e.mip_gev * mip, e.em_spread)]
    hcal_parts = [(hadron, had_energy * (1 - ecal_fraction), h.hadron_spread), (muon, h.mip_gev * mip, h.hadron_spread)]
    out = {}
    for grid, parts in ((ecal_grid, ecal_parts), (hcal_grid, hcal_parts)):
        reached, eta_at, phi_at = at[grid.name]
        pieces = []
        for mask, amount, sigma in parts:
            sel = mask & reached & (amount > 0) & (np.abs(eta_at) < grid.eta_max)
            pieces.append(spread(index[sel], eta_at[sel], phi_at[sel], amount[sel], sigma, grid))
        out[grid.name] = Deposits.concatenate(pieces)
    return out


def cell_energies(deposits: Deposits, grid: Grid, rng: np.random.Generator) -> np.ndarray:
    """float64 [n_eta, n_phi]: the deposits summed per cell plus Gaussian noise in every cell."""
    clean = np.bincount(deposits.cell, weights=deposits.energy, minlength=grid.size)
    return (clean + grid.noise_gev * rng.normal(size=grid.size)).reshape(grid.n_eta, grid.n_phi)


NEIGHBOURS = tuple((di, dj) for di in (-1, 0, 1) for dj in (-1, 0, 1) if (di, dj) != (0, 0))


def _shifted(values: np.ndarray, di: int, dj: int, fill) -> np.ndarray:
    """values[i + di, j + dj] on the grid (phi, axis 1, wraps; beyond the eta edges: `fill`)."""
    out = np.roll(np.roll(values, -dj, axis=1), -di, axis=0)
    if di:
        out[-1 if di > 0 else 0, :] = fill
    return out


def local_maxima(energy: np.ndarray) -> np.ndarray:
    """bool [n_eta, n_phi]: cells at least as energetic as each of their 8 neighbours."""
    peak = np.ones(energy.shape, bool)
    for di, dj in NEIGHBOURS:
        peak &= energy >= _shifted(energy, di, dj, -np.inf)
    return peak


def grow(energy: np.ndarray, labels: np.ndarray, allowed: np.ndarray, max_steps: int | None = None) -> np.ndarray:
    """Grows labelled regions into `allowed` unlabelled cells, one ring of neighbours per step;
    a cell joins the region of its most energetic labelled neighbour. Stops when nothing changes
    (or after `max_steps`)."""
    labels = labels.copy()
    neighbour_energy = [_shifted(energy, di, dj, -np.inf) for di, dj in NEIGHBOURS]
    step = 0
    while max_steps is None or step < max_steps:
        step += 1
        best_energy = np.full(energy.shape, -np.inf)
        best_label = np.zeros_like(labels)
        for (di, dj), e in zip(NEIGHBOURS, neighbour_energy):
            lab = _shifted(labels, di, dj, 0)
            better = (lab > 0) & (e > best_energy)
            best_energy = np.where(better, e, best_energy)
            best_label = np.where(better, lab, best_label)
        joins = allowed & (labels == 0) & (best_label > 0)
        if not joins.any():
            break
        labels[joins] = best_label[joins]
    return labels


def topo_cluster(energy: np.ndarray, noise: float, seed_sigma: float, neighbour_sigma: float,
                 cell_sigma: float) -> np.ndarray:
    """Topological clusters on an (eta, phi) grid, split at local maxima.

    Every local maximum above `seed_sigma` noise sigmas seeds a cluster; clusters grow over
    8-connected cells above `neighbour_sigma`, one ring per step, a cell joining its most
    energetic clustered neighbour (so touching showers stay apart, as a topological cluster
    split at its maxima would); last, one ring of cells above `cell_sigma` joins the same way.
    phi wraps around.

    Args:
      energy: float [n_eta, n_phi] cell energies (GeV).
      noise: the cells' noise sigma (GeV).
    Returns:
      int32 [n_eta, n_phi]: cluster 1 ... K per cell (seeds numbered row-major), 0 for cells in
      no cluster.
    """
    significance = energy / noise
    seeds = local_maxima(energy) & (significance > seed_sigma)
    labels = np.zeros(energy.shape, np.int32)
    labels[seeds] = np.arange(1, seeds.sum() + 1, dtype=np.int32)
    labels = grow(energy, labels, significance > neighbour_sigma)
    return grow(energy, labels, significance > cell_sigma, max_steps=1)


@dataclasses.dataclass
class Clusters:
    """Clusters of one calorimeter.

    Attributes:
      energy: float64 [K] GeV (sum of the cells).
      eta, phi: float64 [K] energy-weighted centre (circular mean in phi).
      width_eta, width_phi: float64 [K] energy-weighted standard deviations (radians for phi).
      n_cells: int64 [K].
      xyz: float64 [K, 3] the centre on the calorimeter surface (metres).
    """

    energy: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    width_eta: np.ndarray
    width_phi: np.ndarray
    n_cells: np.ndarray
    xyz: np.ndarray

    def __len__(self) -> int:
        return len(self.energy)


def cluster_features(energy: np.ndarray, labels: np.ndarray, grid: Grid) -> Clusters:
    """Energy, centre, widths and size of clusters 1 ... K of `labels` [n_eta, n_phi]."""
    k = int(labels.max())
    lab = labels.ravel()
    inside = lab > 0
    c = lab[inside] - 1
    eta_c, phi_c = grid.centres()
    eta = np.repeat(eta_c, grid.n_phi)[inside]
    phi = np.tile(phi_c, grid.n_eta)[inside]
    e = energy.ravel()[inside]
    w = np.maximum(e, 0.0)  # noise can leave a negative cell inside; it gets no weight

    def total(x):
        return np.bincount(c, weights=x, minlength=k)

    wsum = np.maximum(total(w), 1e-12)
    mean_eta = total(w * eta) / wsum
    mean_phi = np.arctan2(total(w * np.sin(phi)), total(w * np.cos(phi)))
    d_phi = np.angle(np.exp(1j * (phi - mean_phi[c])))
    width_eta = np.sqrt(np.maximum(total(w * (eta - mean_eta[c]) ** 2) / wsum, 0.0))
    width_phi = np.sqrt(np.maximum(total(w * d_phi ** 2) / wsum, 0.0))
    zeros = np.zeros(k)
    _, xyz = calorimeter_impact(np.ones(k), mean_eta, mean_phi, zeros, radius=grid.radius_m,
                                z_end=grid.z_m, bfield=1.0)
    return Clusters(energy=total(e), eta=mean_eta, phi=mean_phi, width_eta=width_eta, width_phi=width_phi,
                    n_cells=np.bincount(c, minlength=k).astype(np.int64), xyz=xyz)


def particle_cluster_energy(deposits: Deposits, labels: np.ndarray, n_particles: int) -> scipy.sparse.csr_matrix:
    """float64 [M, K] sparse: the energy each particle left in each cluster of `labels`."""
    cluster = labels.ravel()[deposits.cell]
    inside = cluster > 0
    return scipy.sparse.csr_matrix((deposits.energy[inside], (deposits.particle[inside], cluster[inside] - 1)),
                                   shape=(n_particles, int(labels.max())))
