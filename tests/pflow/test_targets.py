"""Target assignment on a hand-made event: tracks first, then the best unused cluster in
decreasing energy; leftovers merge into the owner of their best cluster."""

import numpy as np
import scipy.sparse

from gnntrack.pflow.targets import assign_elements, kinematic_columns, target_rows, visible
from gnntrack.pflow.types import PARTICLE_CLASSES, TARGET_COLUMNS


def _toy():
    #              pion  photon photon nu   neutron photon photon
    energy = np.array([10.0, 5.0, 3.0, 20.0, 2.0, 4.0, 1.0])
    p4 = np.zeros((7, 4))
    p4[:, 0], p4[:, 3] = energy, energy  # massless along +x; only the sums matter here
    eligible = np.array([True, True, True, False, True, True, True])
    deposits = {(0, 0): 8.0, (0, 1): 1.0,   # the pion has a track: it never takes a cluster
                (1, 1): 4.0, (1, 0): 0.5,   # photon 1 takes cluster 1
                (2, 1): 2.5,                # photon 2: cluster 1 is taken, nothing else: merged into 1
                (4, 2): 1.5,                # the neutron takes cluster 2
                (5, 0): 3.9,                # photon 5 takes cluster 0 (the pion's deposit does not count)
                (6, 0): 0.6, (6, 3): 0.2}   # photon 6: cluster 0 taken, its second best (3) is free
    (rows, cols), values = zip(*deposits.keys()), list(deposits.values())
    clusters = scipy.sparse.csr_matrix((values, (rows, cols)), shape=(7, 4))
    return energy, p4, eligible, clusters


def test_particles_take_their_track_or_best_unused_cluster_and_leftovers_merge():
    energy, p4, eligible, clusters = _toy()
    out = assign_elements(energy, p4, eligible, track_particle=np.array([0, 3]), cluster_energy=clusters)
    # elements: track 0 (pion), track 1 (a neutrino's: not eligible), clusters 0 ... 3
    np.testing.assert_array_equal(out.owner, [0, -1, 5, 1, 4, 6])
    np.testing.assert_array_equal(out.p4[3], p4[1] + p4[2])  # photon 2 merged into photon 1
    np.testing.assert_array_equal(out.p4[1], 0.0)


def test_target_rows_carry_class_charge_and_kinematics_of_the_owner():
    energy, p4, eligible, clusters = _toy()
    out = assign_elements(energy, p4, eligible, np.array([0, 3]), clusters)
    cls = np.array([1, 3, 3, 0, 2, 3, 3])
    charge = np.array([1, 0, 0, 0, 0, 0, 0])
    rows = target_rows(out, cls, charge)
    assert rows.shape == (6, len(TARGET_COLUMNS)) and rows.dtype == np.float32
    assert [PARTICLE_CLASSES[int(c)] for c in rows[:, 0]] == [
        "charged_hadron", "none", "photon", "photon", "neutral_hadron", "photon"]
    assert rows[0, 1] == 1.0 and rows[3, 1] == 0.0
    np.testing.assert_allclose(rows[3, 2:], kinematic_columns(p4[1:2] + p4[2:3])[0])
    np.testing.assert_array_equal(rows[1], 0.0)  # class none: all zero


def test_kinematic_columns_of_a_particle_along_the_beam_are_finite():
    cols = kinematic_columns(np.array([[0.0, 0.0, 5.0, 5.0], [3.0, 4.0, 0.0, 5.0]]))
    assert np.isfinite(cols).all()
    np.testing.assert_allclose(cols[1], [5.0, 0.0, 0.8, 0.6, 5.0])


def test_only_particles_that_reached_the_detector_take_elements():
    # MLPF's visibility: a track, or at least 10% of the energy in clusters (and E > 10 MeV)
    energy = np.array([10.0, 5.0, 0.005, 3.0])
    clusters = scipy.sparse.csr_matrix(([0.4, 2.0, 0.004, 0.2], ([0, 1, 2, 3], [0, 1, 2, 0])), shape=(4, 3))
    seen = visible(energy, np.array([True, True, True, False]), np.array([0]), clusters)
    np.testing.assert_array_equal(seen, [True, True, False, False])  # tracked; 40%; too soft; neutrino
    out = assign_elements(energy, np.zeros((4, 4)), np.array([False, True, False, False]), np.zeros(0, np.int64),
                          scipy.sparse.csr_matrix(([0.4, 2.0], ([0, 1], [0, 1])), shape=(4, 3)))
    np.testing.assert_array_equal(out.owner, [-1, 1, -1])
