"""A rule-based particle flow, the reference every learned model is reported against.

It reads element rows only (ELEMENT_FEATURES) and predicts per element, in the TARGET_COLUMNS
layout, like the models:
  1. link: each cluster links to the nearest track (in eta-phi, the track taken where its helix
     crosses that calorimeter) within `link_ecal` (ECAL clusters) or `link_hcal` (HCAL clusters);
  2. every track is a charged particle with the track's momentum (massless): an electron when the
     ECAL energy around it is close to p, its nearest ECAL cluster as narrow as an EM shower and
     the HCAL energy around it small; a muon when the calorimeter energy around it is small for
     its momentum; else a charged hadron;
  3. subtract: the energy of a track's linked clusters beyond its expected energy (p, or the
     minimum-ionising deposits of a muon) by more than max(min_neutral_gev, n_sigma hadron
     resolutions) is a neutral remainder: photons from its ECAL clusters first (up to their
     energy, shared in proportion), a neutral hadron from its HCAL clusters for the rest;
  4. a cluster linked to no track is a photon (ECAL) or a neutral hadron (HCAL).
Everything else is class 'none'. Energies in GeV; clusters are taken as massless at their centre.
"""

from __future__ import annotations

import ml_collections
import numpy as np
from scipy.spatial import cKDTree

from gnntrack.pflow.elements import COLUMN
from gnntrack.pflow.targets import kinematic_columns
from gnntrack.pflow.tracks import calorimeter_impact, direction
from gnntrack.pflow.types import PARTICLE_CLASSES, TARGET_COLUMNS

CLASS = {name: i for i, name in enumerate(PARTICLE_CLASSES)}
ETA_OFFSET, ETA_BOX = 50.0, 1000.0  # a periodic box in phi only: eta never wraps


def default_baseline_config() -> ml_collections.ConfigDict:
    """Links (eta-phi radii), neutral thresholds (GeV, hadron resolutions) and identification cuts;
    the detector's resolutions and muon deposits come from the simulation config itself."""
    return ml_collections.ConfigDict(dict(
        link_ecal=0.05, link_hcal=0.15, min_neutral_gev=1.0, n_sigma=1.0,
        electron_p_min=2.0, electron_eop_min=0.8, electron_eop_max=1.3, electron_hcal_max=0.1,
        electron_width_max=0.02, muon_p_min=10.0, muon_calo_max=0.2))


def _box(eta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    return np.stack([eta + ETA_OFFSET, np.mod(phi + np.pi, 2 * np.pi)], axis=1)


def pairs_within(track_eta: np.ndarray, track_phi: np.ndarray, eta: np.ndarray, phi: np.ndarray,
                 radius: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(track index, point index, distance) of every track-point pair closer than `radius` in
    (eta, phi), phi wrapping around."""
    if len(track_eta) == 0 or len(eta) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    tracks = cKDTree(_box(track_eta, track_phi), boxsize=[ETA_BOX, 2 * np.pi])
    points = cKDTree(_box(eta, phi), boxsize=[ETA_BOX, 2 * np.pi])
    coo = tracks.sparse_distance_matrix(points, radius, output_type="coo_matrix")
    return coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data


def nearest(track: np.ndarray, point: np.ndarray, distance: np.ndarray, n_points: int) -> np.ndarray:
    """int64 [n_points]: for each point the track of its closest pair, -1 if it has none."""
    order = np.lexsort((distance, point))
    first = np.ones(len(order), bool)
    first[1:] = point[order][1:] != point[order][:-1]
    out = np.full(n_points, -1, np.int64)
    out[point[order][first]] = track[order][first]
    return out


def predict(elements: np.ndarray, config: ml_collections.ConfigDict) -> np.ndarray:
    """float32 [N, len(TARGET_COLUMNS)] per-element predictions for one event's elements [N, F].

    `config` is the simulation's (gnntrack.pflow.config): the rules' settings are its
    `baseline` group; tracks are extrapolated to each calorimeter with its field and geometry."""
    c = config.baseline
    x = elements.astype(np.float64)
    is_track = x[:, COLUMN["is_track"]] > 0.5
    tracks, clusters = np.flatnonzero(is_track), np.flatnonzero(~is_track)
    p = x[tracks, COLUMN["energy_or_p"]]
    ecal = x[clusters, COLUMN["cluster_e_ecal"]] > 0
    energy = x[clusters, COLUMN["energy_or_p"]]
    c_eta, c_phi = x[clusters, COLUMN["eta"]], _phi(x[clusters])
    link = np.full(len(clusters), -1, np.int64)
    cone = {}  # calorimeter -> cluster energy around each track, for identification
    for name, sel, radius in (("ecal", ecal, c.link_ecal), ("hcal", ~ecal, c.link_hcal)):
        calo = config[name]
        reached, xyz = calorimeter_impact(x[tracks, COLUMN["pt_or_et"]], x[tracks, COLUMN["eta"]], _phi(x[tracks]),
                                          x[tracks, COLUMN["track_charge"]], radius=calo.radius_m,
                                          z_end=calo.z_m, bfield=config.bfield)
        reaching = np.flatnonzero(reached)  # loopers link to nothing
        t_eta, t_phi = direction(xyz[reaching])
        t, k, d = pairs_within(t_eta, t_phi, c_eta[sel], c_phi[sel], radius)
        cone[name] = np.bincount(reaching[t], weights=energy[sel][k], minlength=len(tracks))
        if name == "ecal":  # the track's own nearest ECAL cluster, for the electron's shower shape
            closest = nearest(k, t, d, len(reaching))
            track_cluster = np.full(len(tracks), -1, np.int64)
            track_cluster[reaching] = np.where(closest >= 0, np.flatnonzero(sel)[np.maximum(closest, 0)], -1)
        near = nearest(t, k, d, int(sel.sum()))
        link[sel] = np.where(near >= 0, reaching[np.maximum(near, 0)], -1)  # -> index into tracks
    cone_ecal, cone_hcal = cone["ecal"], cone["hcal"]
    linked = link >= 0
    e_ecal = np.bincount(link[linked & ecal], weights=energy[linked & ecal], minlength=len(tracks))
    e_hcal = np.bincount(link[linked & ~ecal], weights=energy[linked & ~ecal], minlength=len(tracks))

    width = np.where(track_cluster >= 0, x[clusters[np.maximum(track_cluster, 0)], COLUMN["cluster_width_eta"]], np.inf)
    electron = ((p > c.electron_p_min) & (cone_ecal > c.electron_eop_min * p)
                & (cone_ecal < c.electron_eop_max * p) & (cone_hcal < c.electron_hcal_max * p)
                & (width < c.electron_width_max))
    muon = ~electron & (p > c.muon_p_min) & (cone_ecal + cone_hcal < c.muon_calo_max * p)
    track_class = np.where(electron, CLASS["electron"], np.where(muon, CLASS["muon"], CLASS["charged_hadron"]))
    expected = np.where(muon, config.ecal.mip_gev + config.hcal.mip_gev, p)
    sigma = np.hypot(config.hcal.stochastic * np.sqrt(expected), config.hcal.constant * expected)
    excess = e_ecal + e_hcal - expected
    excess = np.where(excess > np.maximum(c.min_neutral_gev, c.n_sigma * sigma), excess, 0.0)
    photon_energy = np.minimum(excess, e_ecal)  # photons first, as the neutral remainder's ECAL part
    hadron_energy = excess - photon_energy

    # a linked cluster gets its share of its track's neutral remainder; an unlinked one all its energy
    owner = np.maximum(link, 0)
    share = np.where(ecal, photon_energy[owner] * energy / np.maximum(e_ecal[owner], 1e-12),
                     hadron_energy[owner] * energy / np.maximum(e_hcal[owner], 1e-12))
    neutral_energy = np.where(linked, share, energy)
    neutral_class = np.where(neutral_energy > 0, np.where(ecal, CLASS["photon"], CLASS["neutral_hadron"]), 0)

    out = np.zeros((len(x), len(TARGET_COLUMNS)), np.float32)
    out[tracks, 0] = track_class
    out[tracks, 1] = x[tracks, COLUMN["track_charge"]]
    out[tracks, 2:] = kinematic_columns(massless_p4(p, x[tracks, COLUMN["eta"]], _phi(x[tracks])))
    out[clusters, 0] = neutral_class
    out[clusters, 2:] = np.where(neutral_class[:, None] > 0, kinematic_columns(massless_p4(neutral_energy, c_eta, c_phi)), 0.0)
    return out


def _phi(rows: np.ndarray) -> np.ndarray:
    return np.arctan2(rows[:, COLUMN["sin_phi"]], rows[:, COLUMN["cos_phi"]])


def massless_p4(energy: np.ndarray, eta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """float64 [M, 4] (px, py, pz, E) of massless particles of `energy` (GeV) along (eta, phi)."""
    return energy[:, None] * np.stack([np.cos(phi) / np.cosh(eta), np.sin(phi) / np.cosh(eta), np.tanh(eta),
                                       np.ones_like(eta)], axis=1)
