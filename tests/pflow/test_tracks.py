"""Tracks and calorimeter impacts: straight neutrals, bending charges, loopers, the tracker's cuts."""

import numpy as np

from gnntrack.pflow.config import default_pflow_config
from gnntrack.pflow.generate import GenParticles
from gnntrack.pflow.tracks import calorimeter_impact, direction, particle_class, reconstruct_tracks

R, Z, B = 1.29, 3.15, 3.8


def _impact(pt, eta, phi, charge):
    return calorimeter_impact(np.array(pt, float), np.array(eta, float), np.array(phi, float),
                              np.array(charge), radius=R, z_end=Z, bfield=B)


def test_neutrals_fly_straight_to_the_barrel_or_the_endcap():
    reached, xyz = _impact([1.0, 1.0], [0.5, 3.0], [1.0, -2.0], [0, 0])
    assert reached.all()
    eta, phi = direction(xyz)
    np.testing.assert_allclose(eta, [0.5, 3.0])
    np.testing.assert_allclose(phi, [1.0, -2.0])
    assert np.isclose(np.hypot(*xyz[0, :2]), R) and np.isclose(xyz[1, 2], Z)


def test_charges_bend_clockwise_for_positive_and_loopers_never_arrive():
    threshold = 0.3 * B * R / 2  # pT [GeV] whose helix diameter is the barrel radius
    reached, xyz = _impact([5.0, 5.0, 0.9 * threshold], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1, -1, 1])
    np.testing.assert_array_equal(reached, [True, True, False])
    _, phi = direction(xyz[:2])
    rho = 5.0 / (0.3 * B)
    np.testing.assert_allclose(phi, [-np.arcsin(R / (2 * rho)), np.arcsin(R / (2 * rho))])
    np.testing.assert_allclose(np.hypot(xyz[:2, 0], xyz[:2, 1]), R)


def test_tracker_keeps_charged_particles_in_its_acceptance_only():
    config = default_pflow_config()
    config.tracker.efficiency_hadron = 1.0
    p4 = np.array([[10.0, 0, 0, 10.0], [10.0, 0, 0, 10.0], [0.2, 0, 0, 0.2], [1.0, 0, 20.0, 20.02]])
    particles = GenParticles(pid=np.array([211, 22, 211, -211], np.int32), charge=np.array([1, 0, 1, -1], np.int8),
                             p4=p4, collision=np.zeros(4, np.int32))
    tracks = reconstruct_tracks(particles, np.random.default_rng(0), config)
    np.testing.assert_array_equal(tracks.particle, [0])  # neutral, too soft, too forward: no track
    assert abs(tracks.pt[0] - 10.0) < 0.5 and tracks.charge[0] == 1
    np.testing.assert_array_equal(particle_class(particles.pid, particles.charge), [1, 3, 1, 1])
    assert list(particle_class(np.array([11, -13, 130, 12]), np.array([-1, 1, 0, 0]))) == [4, 5, 2, 0]
