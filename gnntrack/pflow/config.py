"""Settings of the particle-flow simulation: generator, tracker, calorimeters, clustering, baseline.

One ConfigDict (`default_pflow_config()`), written beside the events (pflow.json) so a data set
can be made again; `gnntrack pflow simulate --set ecal.noise_gev=0.05` changes any key.
Units: GeV, metres, tesla; calorimeter cells are (eta, phi) bins seen from the origin.

Detector (CMS-like, stated, not tuned to any experiment):
  * tracker: charged particles with pT > pt_min and |eta| < eta_max; efficiency per particle
    (muons, electrons, hadrons); sigma(pT)/pT = a pT (+) b in quadrature, so sigma(1/pT) =
    sqrt((a pT)^2 + b^2) / pT; direction smeared by angle_sigma; chi2/ndf drawn from chi2(ndf)/ndf.
  * ECAL: cells of d_eta x 2pi/n_phi up to |eta| < eta_max at radius radius_m / endcap z_m;
    photons and electrons deposit E smeared by stochastic/sqrt(E) (+) constant, spread laterally
    by a Gaussian of width em_spread (eta-phi units); Gaussian noise noise_gev in every cell.
  * HCAL: 4 x 4 ECAL cells per cell; hadrons deposit E smeared by stochastic/sqrt(E) (+)
    constant, a fraction U(0, hadron_ecal_max) of it in the ECAL (spread hadron_ecal_spread) and
    the rest in the HCAL (spread hadron_spread); muons leave minimum-ionising deposits.
    Charged particles too soft to reach a calorimeter's radius (loopers) leave nothing in it.
  * baseline: the rule-based particle flow's links and thresholds (gnntrack.pflow.baseline).
  * clustering: topological, per calorimeter: seed / neighbour / cell thresholds in units of
    that calorimeter's noise sigma, 8-connected cells, phi wraps around; every local maximum
    above the seed threshold starts its own cluster (gnntrack.pflow.calo.topo_cluster).
"""

from __future__ import annotations

import ml_collections

from gnntrack.errors import ConfigError
from gnntrack.pflow.baseline import default_baseline_config


def default_pflow_config() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.pileup = 0.0
    c.process = "ttbar"
    c.ecm_gev = 14000.0
    c.tau0_max_mm = 10.0
    c.bfield = 3.8
    c.tracker = ml_collections.ConfigDict(dict(
        pt_min=0.5, eta_max=2.5, efficiency_hadron=0.9, efficiency_electron=0.9, efficiency_muon=0.98,
        sigma_pt_a=1.5e-4, sigma_pt_b=0.007, angle_sigma=1e-3, chi2_ndf=10))
    c.ecal = ml_collections.ConfigDict(dict(
        radius_m=1.29, z_m=3.15, eta_max=3.0, d_eta=0.025, n_phi=256, noise_gev=0.04,
        stochastic=0.03, constant=0.005, em_spread=0.012, mip_gev=0.3))
    c.hcal = ml_collections.ConfigDict(dict(
        radius_m=1.8, z_m=3.9, cells_per_ecal_cell=4, noise_gev=0.2, stochastic=1.0, constant=0.05,
        hadron_spread=0.06, hadron_ecal_max=0.6, hadron_ecal_spread=0.025, mip_gev=2.0))
    c.clustering = ml_collections.ConfigDict(dict(seed_sigma=4.0, neighbour_sigma=2.0, cell_sigma=0.0))
    c.baseline = default_baseline_config()
    return c


def validate_pflow_config(config: ml_collections.ConfigDict) -> None:
    """ConfigError naming the first key whose value cannot work."""
    checks = [
        ("pileup", config.pileup >= 0, "must be >= 0"),
        ("process", config.process in ("ttbar",), "must be 'ttbar'"),
        ("tracker.pt_min", config.tracker.pt_min > 0, "must be > 0"),
        ("ecal.d_eta", config.ecal.d_eta > 0, "must be > 0"),
        ("ecal.n_phi", config.ecal.n_phi % config.hcal.cells_per_ecal_cell == 0,
         "must be a multiple of hcal.cells_per_ecal_cell"),
        ("ecal.eta_max", round(2 * config.ecal.eta_max / (config.ecal.d_eta * config.hcal.cells_per_ecal_cell), 6)
         % 1 == 0, "must be a whole number of HCAL cells (2 eta_max / (d_eta * cells_per_ecal_cell))"),
        ("ecal.noise_gev", config.ecal.noise_gev > 0, "must be > 0 (clustering thresholds are in noise units)"),
        ("hcal.noise_gev", config.hcal.noise_gev > 0, "must be > 0 (clustering thresholds are in noise units)"),
        ("clustering.neighbour_sigma", config.clustering.cell_sigma <= config.clustering.neighbour_sigma
         <= config.clustering.seed_sigma, "must lie between clustering.cell_sigma and clustering.seed_sigma"),
    ]
    for key, ok, what in checks:
        if not ok:
            raise ConfigError(f"pflow setting {key!r} {what}")
