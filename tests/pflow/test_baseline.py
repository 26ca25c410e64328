"""Rule-based particle flow on hand-made elements: link, identify, subtract, neutral remainder."""

import numpy as np

from gnntrack.pflow.baseline import predict
from gnntrack.pflow.config import default_pflow_config
from gnntrack.pflow.elements import COLUMN
from gnntrack.pflow.tracks import calorimeter_impact
from gnntrack.pflow.types import ELEMENT_FEATURES, PARTICLE_CLASSES

CONFIG = default_pflow_config()


def _track(pt, eta, phi, charge=1):
    row = np.zeros(len(ELEMENT_FEATURES), np.float32)
    row[[COLUMN[c] for c in ("is_track", "pt_or_et", "eta", "sin_phi", "cos_phi", "energy_or_p", "track_charge")]] = (
        1.0, pt, eta, np.sin(phi), np.cos(phi), pt * np.cosh(eta), charge)
    _, xyz = calorimeter_impact(np.array([pt]), np.array([eta]), np.array([phi]), np.array([charge]),
                                radius=CONFIG.ecal.radius_m, z_end=CONFIG.ecal.z_m, bfield=CONFIG.bfield)
    row[[COLUMN["position_x"], COLUMN["position_y"], COLUMN["position_z"]]] = xyz[0]
    return row


def _cluster(energy, eta, phi, *, ecal, width=0.01):
    row = np.zeros(len(ELEMENT_FEATURES), np.float32)
    row[COLUMN["cluster_width_eta"]] = width
    row[[COLUMN[c] for c in ("is_cluster", "pt_or_et", "eta", "sin_phi", "cos_phi", "energy_or_p")]] = (
        1.0, energy / np.cosh(eta), eta, np.sin(phi), np.cos(phi), energy)
    row[COLUMN["cluster_e_ecal" if ecal else "cluster_e_hcal"]] = energy
    return row


def _classes(pred):
    return [PARTICLE_CLASSES[int(c)] for c in pred[:, 0]]


def test_a_hadron_track_explains_its_clusters_and_a_lone_cluster_is_neutral():
    # a 20 GeV pi+ (its HCAL cluster sits where the track crosses the HCAL), an isolated photon
    _, at_hcal = calorimeter_impact(np.array([20.0]), np.array([0.0]), np.array([0.0]), np.array([1]),
                                    radius=CONFIG.hcal.radius_m, z_end=CONFIG.hcal.z_m, bfield=CONFIG.bfield)
    phi_hcal = float(np.arctan2(at_hcal[0, 1], at_hcal[0, 0]))
    elements = np.stack([_track(20.0, 0.0, 0.0), _cluster(6.0, 0.0, -0.02, ecal=True),
                         _cluster(13.0, 0.0, phi_hcal, ecal=False), _cluster(5.0, 1.0, 2.0, ecal=True)])
    pred = predict(elements, CONFIG)
    assert _classes(pred) == ["charged_hadron", "none", "none", "photon"]
    np.testing.assert_allclose(pred[0, [1, 2, 6]], [1.0, 20.0, 20.0], rtol=1e-6)
    np.testing.assert_allclose(pred[3, 6], 5.0, rtol=1e-6)


def test_energy_beyond_the_track_is_a_photon_then_a_neutral_hadron():
    elements = np.stack([_track(10.0, 0.0, 0.0), _cluster(8.0, 0.0, -0.01, ecal=True),
                         _cluster(32.0, 0.0, -0.02, ecal=False)])
    pred = predict(elements, CONFIG)
    assert _classes(pred) == ["charged_hadron", "photon", "neutral_hadron"]
    # excess 8 + 32 - 10 = 30 GeV: the ECAL cluster's 8 as a photon, 22 as a neutral hadron
    np.testing.assert_allclose(pred[1:, 6], [8.0, 22.0], rtol=1e-5)


def test_a_track_with_almost_no_calorimeter_energy_is_a_muon_and_one_with_ecal_only_an_electron():
    # the last track's ECAL cluster is as wide as a hadron's shower: no electron
    elements = np.stack([_track(50.0, 0.5, 1.0, charge=-1), _cluster(2.0, 0.5, 0.99, ecal=False),
                         _track(30.0, -0.5, -1.0), _cluster(30.0, -0.5, -1.01, ecal=True),
                         _track(30.0, 1.5, 2.0), _cluster(30.0 * np.cosh(1.5), 1.5, 1.99, ecal=True, width=0.03)])
    pred = predict(elements, CONFIG)
    assert _classes(pred) == ["muon", "none", "electron", "none", "charged_hadron", "none"]
    assert pred[0, 1] == -1.0
