"""Preprocessing: centring (phi wraps), rotation, flips, ParticleNet's 7 features and the [N, 4, 80] array."""

import numpy as np
import pytest

from gnntrack.jets.preprocess import (
    PARTICLENET_FEATURES, particlenet_features, standardized_coordinates, study_array)
from gnntrack.jets.types import JetArrays
from tests.jets.test_formats import four_vector


def make_jets(pt, eta, phi, slots=4):
    """JetArrays from per-jet lists of constituent (pt, eta, phi), zero-padded to `slots`; the jet
    is the constituents' sum."""
    constituents = np.zeros((len(pt), slots, 4), np.float32)
    for j, (a, b, c) in enumerate(zip(pt, eta, phi)):
        constituents[j, : len(a)] = four_vector(a, b, c)
    return JetArrays(constituents, np.zeros(len(pt), np.int8), np.ones(len(pt), np.float32),
                     constituents.astype(np.float64).sum(axis=1).astype(np.float32))


def test_centring_on_the_hardest_constituent_wraps_phi():
    jets = make_jets([[100.0, 50.0]], [[1.0, 1.2]], [[3.1, -3.1]])
    deta, dphi = standardized_coordinates(jets, centre="hardest")
    np.testing.assert_allclose(deta[0, :2], [0.0, 0.2], atol=1e-6)
    np.testing.assert_allclose(dphi[0, :2], [0.0, 2 * np.pi - 6.2], atol=1e-6)  # across +-pi: 0.083, not -6.2
    np.testing.assert_array_equal(deta[0, 2:], 0.0)


def test_principal_rotation_turns_the_jet_axis_vertical_and_flip_puts_the_harder_half_up():
    # constituents (by decreasing pT) on a line at 30 degrees from +eta, more pT on the negative side
    t = np.array([-0.1, -0.3, 0.1, 0.2])
    angle = np.deg2rad(30)
    jets = make_jets([[80.0, 50.0, 10.0, 5.0]], [t * np.cos(angle)], [t * np.sin(angle)])
    deta, dphi = standardized_coordinates(jets, centre="hardest", rotate="principal", flip=True)
    np.testing.assert_allclose(deta, 0.0, atol=1e-6)  # the whole line lies on d eta = 0
    pt = np.array([80.0, 50.0, 10.0, 5.0])
    assert np.sum(pt * dphi[0]) > 0
    # distances from the hardest constituent are kept
    np.testing.assert_allclose(np.abs(dphi[0]), np.abs(t - t[0]), atol=1e-6)


def test_second_rotation_puts_the_second_constituent_straight_up():
    jets = make_jets([[100.0, 40.0, 10.0]], [[0.0, 0.3, -0.2]], [[0.0, 0.4, 0.1]])
    deta, dphi = standardized_coordinates(jets, centre="hardest", rotate="second", flip=True)
    np.testing.assert_allclose([deta[0, 1], dphi[0, 1]], [0.0, 0.5], atol=1e-6)
    assert deta[0, 2] >= 0  # the flip mirrors d eta only


def test_features_do_not_change_when_the_jet_is_turned_in_phi():
    pt, eta, phi = [[300.0, 200.0, 50.0]], [[0.3, 0.5, 0.1]], np.array([[0.2, 0.0, 0.5]])
    a, mask_a = particlenet_features(make_jets(pt, eta, phi), n=4, rotate="principal", flip=True)
    b, mask_b = particlenet_features(make_jets(pt, eta, phi + 2.5), n=4, rotate="principal", flip=True)
    np.testing.assert_array_equal(mask_a, mask_b)
    np.testing.assert_allclose(a, b, atol=2e-4)  # float32 four-vectors of turned jets differ in rounding


def test_particlenet_features_by_hand():
    jets = make_jets([[300.0, 100.0]], [[0.1, -0.2]], [[0.0, 0.3]])
    features, mask = particlenet_features(jets, n=3)
    assert features.shape == (1, 3, len(PARTICLENET_FEATURES)) and features.dtype == np.float32
    np.testing.assert_array_equal(mask, [[True, True, False]])
    np.testing.assert_array_equal(features[0, 2], 0.0)
    jet = jets.jet[0].astype(np.float64)
    jet_pt = np.hypot(jet[1], jet[2])
    jet_eta, jet_phi = np.arcsinh(jet[3] / jet_pt), np.arctan2(jet[2], jet[1])
    e = 100.0 * np.cosh(-0.2)
    expected = [-0.2 - jet_eta, 0.3 - jet_phi, np.log(100.0), np.log(e), np.log(100.0 / jet_pt),
                np.log(e / jet[0]), np.hypot(-0.2 - jet_eta, 0.3 - jet_phi)]
    np.testing.assert_allclose(features[0, 1], expected, rtol=1e-4, atol=1e-5)


def test_more_slots_than_the_file_has_are_padding():
    jets = make_jets([[10.0]], [[0.0]], [[0.0]], slots=2)
    features, mask = particlenet_features(jets, n=5)
    assert features.shape == (1, 5, 7) and mask.sum() == 1 and not features[0, 1:].any()


def test_study_array_is_features_first():
    jets = make_jets([[300.0, 100.0], [50.0]], [[0.1, -0.2], [1.0]], [[0.0, 0.3], [2.0]])
    x = study_array(jets, n=80)
    assert x.shape == (2, 4, 80) and x.dtype == np.float32
    deta, dphi = standardized_coordinates(jets, rotate="principal", flip=True, n=80)
    np.testing.assert_array_equal(x[:, 0, :2], deta[:, :2].astype(np.float32))
    np.testing.assert_array_equal(x[:, 1, :2], dphi[:, :2].astype(np.float32))
    np.testing.assert_allclose(x[0, 2, :2], np.log([300.0, 100.0]), rtol=1e-5)
    assert not x[1, :, 1:].any()


def test_unknown_modes_are_refused():
    with pytest.raises(ValueError, match="rotate one of .*got 'jet', 'pca'"):
        standardized_coordinates(make_jets([[1.0]], [[0.0]], [[0.0]]), rotate="pca")
