"""The tracks + towers detector: which particles are tracks, how cells sum, threshold and smear."""

import dataclasses

import numpy as np

from gnntrack.jets.towers import Particles, TowerDetector, pt_eta_phi, tower_response

EXACT = TowerDetector(stochastic=0.0, constant=0.0)  # no smearing: cell energies are plain sums


def particles(rows):
    """Particles from rows (event, pt, eta, phi, charged), massless."""
    rows = np.asarray(rows, float)
    pt, eta, phi = rows[:, 1], rows[:, 2], rows[:, 3]
    p = np.stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta), pt * np.cosh(eta)], axis=1)
    return Particles(rows[:, 0].astype(np.int64), p, rows[:, 4].astype(bool))


def test_hard_central_charged_particles_are_tracks_with_their_own_momentum():
    seen = tower_response(particles([[0, 5.0, 0.3, 1.0, 1], [1, 2.0, -1.0, 0.5, 1]]), np.random.default_rng(0), EXACT)
    np.testing.assert_array_equal(seen.event, [0, 1])
    np.testing.assert_array_equal(seen.charged, [True, True])
    # bitwise: tracks are copied, not recomputed
    np.testing.assert_array_equal(seen.p, particles([[0, 5.0, 0.3, 1.0, 1], [1, 2.0, -1.0, 0.5, 1]]).p)


def test_neutral_and_soft_or_forward_charged_particles_share_cells():
    rows = [[0, 3.0, 0.52, 0.01, 0],   # photon
            [0, 0.4, 0.57, 0.02, 1],   # charged below the track threshold: same cell
            [0, 2.0, 3.02, 0.01, 1],   # charged beyond the tracker: a cell of its own
            [0, 0.5, -1.0, 1.0, 0]]    # a cell with E_T < 1 GeV: dropped
    seen = tower_response(particles(rows), np.random.default_rng(0), EXACT)
    assert len(seen) == 2 and not seen.charged.any()
    pt, eta, phi = pt_eta_phi(seen.p)
    energy = 3.0 * np.cosh(0.52) + 0.4 * np.cosh(0.57)
    np.testing.assert_allclose(seen.p[0, 3], energy, rtol=1e-12)
    np.testing.assert_allclose([eta[0], eta[1]], [0.55, 3.05], atol=1e-9)  # cell centres
    np.testing.assert_allclose(phi, 0.0, atol=1e-9)  # phi cell 31 of 63 is centred on 0
    np.testing.assert_allclose(seen.p[:, 3] ** 2, np.sum(seen.p[:, :3] ** 2, axis=1), rtol=1e-9)  # massless


def test_cells_of_different_events_stay_apart():
    seen = tower_response(particles([[0, 3.0, 0.05, 0.0, 0], [2, 3.0, 0.05, 0.0, 0]]), np.random.default_rng(0), EXACT)
    np.testing.assert_array_equal(seen.event, [0, 2])


def test_smearing_follows_the_stated_resolution_and_the_seed():
    n = 4000
    rows = [[k, 100.0, 0.05, 0.0, 0] for k in range(n)]  # one 100 GeV cell per event
    detector = TowerDetector()
    a = tower_response(particles(rows), np.random.default_rng(7), detector)
    b = tower_response(particles(rows), np.random.default_rng(7), detector)
    np.testing.assert_array_equal(a.p, b.p)  # same seed, same draws (bitwise: same code, same inputs)
    e = 100.0 * np.cosh(0.05)
    expected = np.hypot(0.5 / np.sqrt(e), 0.03)
    assert abs(np.std(a.p[:, 3] / e) - expected) < 0.1 * expected  # ~2 % statistical error on n = 4000
    assert abs(np.mean(a.p[:, 3] / e) - 1.0) < 3 * expected / np.sqrt(n)


def test_thresholds_are_settings():
    rows = [[0, 0.8, 0.0, 0.0, 1]]
    assert tower_response(particles(rows), np.random.default_rng(0), EXACT).charged.all()
    strict = dataclasses.replace(EXACT, track_pt_min=1.0, cell_et_min=0.5)
    seen = tower_response(particles(rows), np.random.default_rng(0), strict)
    assert len(seen) == 1 and not seen.charged.any()
