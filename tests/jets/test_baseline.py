"""Cut-based baselines: the jet mass, the mass window's score and the mass x multiplicity likelihood."""

import numpy as np

from gnntrack.jets.baseline import baseline_aucs, jet_mass, likelihood_ratio_score, mass_window_score
from gnntrack.jets.types import JetArrays
from gnntrack.train.metrics import roc_auc


def jets_with(masses, counts, labels):
    """Jets at rest with the given masses (E = m), `counts` real constituents each, and labels."""
    n = len(masses)
    constituents = np.zeros((n, max(counts) + 1, 4), np.float32)
    for j, c in enumerate(counts):
        constituents[j, :c, 0] = 1.0
    jet = np.zeros((n, 4), np.float32)
    jet[:, 0] = masses
    return JetArrays(constituents, np.asarray(labels, np.int8), np.ones(n, np.float32), jet)


def test_jet_mass_of_a_moving_jet():
    jet = np.array([[np.hypot(300.0, 170.0), 0.0, 300.0, 0.0]], np.float32)
    jets = JetArrays(np.zeros((1, 1, 4), np.float32), np.zeros(1, np.int8), np.ones(1, np.float32), jet)
    np.testing.assert_allclose(jet_mass(jets), [170.0], rtol=1e-5)


def test_mass_window_ranks_the_top_mass_highest():
    jets = jets_with([172.0, 180.0, 40.0, 300.0], [1, 1, 1, 1], [1, 1, 0, 0])
    np.testing.assert_allclose(mass_window_score(jets), [-0.5, -7.5, -132.5, -127.5])
    assert roc_auc(mass_window_score(jets), jets.label) == 1.0


def test_likelihood_uses_the_constituent_count_where_the_mass_does_not_separate():
    rng = np.random.default_rng(0)
    labels = np.repeat([1, 0], 200)
    counts = np.where(labels == 1, rng.integers(40, 60, 400), rng.integers(10, 30, 400))
    jets = jets_with(np.full(400, 172.0), counts, labels)
    assert roc_auc(mass_window_score(jets), jets.label) == 0.5
    assert roc_auc(likelihood_ratio_score(jets, jets), jets.label) == 1.0
    aucs = baseline_aucs(jets)
    assert aucs["mass_window"] == 0.5 and aucs["mass_count_likelihood"] > 0.99
