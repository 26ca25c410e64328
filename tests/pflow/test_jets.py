"""Anti-kT jets of hand-made particle lists, and gen-reco jet matching."""

import numpy as np

from gnntrack.pflow.jets import Jets, cluster_jets, match_jets


def test_clustering_prints_nothing_on_stdout(capfd):
    # FastJet's banner comes on the first clustering of a process: it must not mix into stdout
    cluster_jets(np.array([10.0]), np.array([0.0]), np.array([0.0]), np.array([1]))
    assert capfd.readouterr().out == ""


def test_jets_of_hand_made_events():
    # event 0: two collinear-in-phi particles 0.1 apart in eta make one jet (px adds up: 40 GeV),
    # a third, far away, its own; event 1 is empty; event 2: one particle across phi = pi
    pt = np.array([30.0, 10.0, 25.0, 40.0])
    eta = np.array([0.0, 0.1, 1.5, -1.0])
    phi = np.array([0.0, 0.0, 2.0, np.pi - 0.01])
    jets = cluster_jets(pt, eta, phi, np.array([3, 0, 1]))
    np.testing.assert_array_equal(jets.event, [0, 0, 2])
    np.testing.assert_allclose(jets.pt, [40.0, 25.0, 40.0], rtol=1e-12)
    np.testing.assert_allclose(jets.phi, [0.0, 2.0, np.pi - 0.01], atol=1e-12)
    np.testing.assert_allclose(jets.eta[1:], [1.5, -1.0], rtol=1e-12)
    assert 0.0 < jets.eta[0] < 0.1


def test_no_particles_give_no_jets():
    jets = cluster_jets(np.zeros(0), np.zeros(0), np.zeros(0), np.array([0, 0]))
    assert len(jets.pt) == 0
    assert len(match_jets(jets, jets, 2).gen_pt) == 0


def _jets(pt, eta, phi, event):
    return Jets(*(np.asarray(a, float) for a in (pt, eta, phi)), np.asarray(event, np.int64))


def test_matching_within_delta_r_across_phi_wrap_and_threshold():
    gen = _jets([50, 40, 30, 10], [0.0, 1.0, -0.5, 2.0], [3.13, 0.0, 1.0, 0.0], [0, 0, 1, 1])
    # reco: across the phi wrap (dR 0.02) -> matched; 0.2 away -> unmatched; exact -> matched
    reco = _jets([45, 35, 33, 9], [0.0, 1.2, -0.5, 2.0], [-3.13, 0.0, 1.0, 0.0], [0, 0, 1, 1])
    match = match_jets(gen, reco, 2, pt_min=20.0, max_dr=0.1)
    np.testing.assert_array_equal(match.gen_pt, [50, 40, 30])  # the 10 GeV jet is below threshold
    np.testing.assert_array_equal(match.event, [0, 0, 1])
    np.testing.assert_array_equal(match.reco_pt, [45, np.nan, 33])
    np.testing.assert_array_equal(match.matched, [True, False, True])
