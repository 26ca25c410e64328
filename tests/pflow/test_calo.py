"""Calorimeter: topological clustering on hand-made grids, energy-conserving shower spreading."""

import numpy as np

from gnntrack.pflow.calo import Deposits, Grid, cluster_features, particle_cluster_energy, spread, topo_cluster


def test_topo_clusters_split_at_maxima_wrap_in_phi_and_need_a_seed():
    e = np.zeros((10, 8))
    e[2, 2], e[2, 3], e[2, 4] = 10.0, 3.0, 8.0  # two maxima with a valley cell between them
    e[2, 1] = 0.5                                # below the neighbour threshold: ring cell only
    e[7, 1], e[7, 2] = 3.0, 3.0                  # above neighbour, no seed: no cluster
    e[5, 0], e[5, 7] = 6.0, 3.0                  # seed in the first phi column, neighbour in the last
    e[0, 3], e[9, 3] = 6.0, 3.0                  # eta does not wrap: the second cell stays alone
    e[4, 4] = -0.5                               # below the cell threshold
    labels = topo_cluster(e, 1.0, seed_sigma=4.0, neighbour_sigma=2.0, cell_sigma=0.0)

    seeds = {(0, 3), (2, 2), (2, 4), (5, 0)}
    assert len(np.unique(labels[labels > 0])) == len(seeds)
    assert len({labels[s] for s in seeds}) == len(seeds)  # one cluster per seed
    assert labels[2, 3] == labels[2, 2]  # the valley cell joins its more energetic neighbour
    assert labels[2, 1] == labels[2, 2]  # ring cell above the cell threshold
    assert labels[5, 7] == labels[5, 0]  # across the phi seam
    assert labels[9, 3] == 0 and labels[7, 1] == 0 and labels[7, 2] == 0 and labels[4, 4] == 0


def test_cluster_features_and_truth_of_a_cluster_across_the_phi_seam():
    grid = Grid("ecal", eta_max=1.0, n_eta=4, n_phi=8, radius_m=1.0, z_m=2.0, noise_gev=0.1)
    e = np.zeros((4, 8))
    e[1, 0], e[1, 7] = 3.0, 1.0
    labels = topo_cluster(e, grid.noise_gev, 4.0, 2.0, 0.0)
    clusters = cluster_features(e, labels, grid)
    assert len(clusters) == 1 and clusters.n_cells[0] == 2 and clusters.energy[0] == 4.0
    # phi centres -pi + pi/8 (3 GeV) and pi - pi/8 (1 GeV): the mean lies across the seam, near -pi
    assert -np.pi < clusters.phi[0] < -np.pi + np.pi / 8
    assert np.isclose(np.hypot(*clusters.xyz[0, :2]), 1.0)  # on the barrel surface
    deposits = Deposits(particle=np.array([0, 1, 1]), cell=np.array([8, 15, 8]), energy=np.array([2.0, 1.0, 1.0]))
    truth = particle_cluster_energy(deposits, labels, n_particles=2).toarray()
    np.testing.assert_array_equal(truth, [[2.0], [2.0]])


def test_spread_keeps_the_energy_inside_the_acceptance_and_wraps_in_phi():
    grid = Grid("ecal", eta_max=1.0, n_eta=40, n_phi=64, radius_m=1.0, z_m=2.0, noise_gev=0.1)
    out = spread(np.array([0, 1]), np.array([0.0, 0.99]), np.array([np.pi - 1e-3, 0.0]), np.array([10.0, 10.0]),
                 0.03, grid)
    central = out.particle == 0
    assert np.isclose(out.energy[central].sum(), 10.0)
    assert {0, 63} <= set(out.cell[central] % grid.n_phi)  # both sides of the seam
    assert out.energy[~central].sum() < 10.0  # part of the edge shower leaves |eta| < eta_max
    assert out.cell.max() < grid.size
