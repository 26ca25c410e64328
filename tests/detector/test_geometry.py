"""The detector table: TrackML ids, mirrored -z numbering, layer_index, module tiling."""

import numpy as np
import pytest

from gnntrack.detector.geometry import PIXEL_VOLUMES, build_detector, default_detector


@pytest.fixture(scope="module")
def det():
    return default_detector()


def test_layout_counts_and_ids(det):
    per_volume = {v: int((det.volume_id == v).sum()) for v in np.unique(det.volume_id)}
    assert per_volume == {7: 7, 8: 4, 9: 7, 12: 6, 13: 4, 14: 6, 16: 6, 17: 2, 18: 6}
    assert len(det) == 48
    for v in per_volume:
        ids = det.layer_id[det.volume_id == v]
        np.testing.assert_array_equal(ids, 2 * np.arange(1, len(ids) + 1))
    keys = list(zip(det.volume_id.tolist(), det.layer_id.tolist()))
    assert keys == sorted(keys)
    np.testing.assert_array_equal(det.is_pixel, np.isin(det.volume_id, PIXEL_VOLUMES))
    np.testing.assert_array_equal(det.is_barrel, np.isin(det.volume_id, (8, 13, 17)))
    np.testing.assert_allclose(det.position[det.volume_id == 8], [32, 72, 116, 172])
    np.testing.assert_allclose(det.position[det.volume_id == 17], [820, 1020])


def test_minus_z_numbering_is_mirrored(det):
    def z_of(volume, layer):
        return det.position[det.layer_index(volume, layer)]

    assert z_of(9, 2) == 600 and z_of(9, 14) == 1500            # +z: layer 2 innermost
    assert z_of(7, 2) == -1500 and z_of(7, 14) == -600          # -z: layer 2 outermost
    assert z_of(12, 2) == -2950 and z_of(14, 2) == 1220
    assert z_of(16, 12) == -1220 and z_of(18, 12) == 2950
    for neg, pos in ((7, 9), (12, 14), (16, 18)):
        zn = det.position[det.volume_id == neg]
        zp = det.position[det.volume_id == pos]
        np.testing.assert_allclose(zn, -zp[::-1])


def test_layer_index(det):
    idx = det.layer_index(det.volume_id, det.layer_id)
    np.testing.assert_array_equal(idx, np.arange(len(det)))
    assert det.layer_index(np.array([8, 99, 8]), np.array([3, 2, 8])).tolist() == [-1, -1, 10]
    assert det.layer_index(np.array([8, 13]), np.array([2, 2])).dtype == np.int32


def test_module_ids_within_tiling(det):
    rng = np.random.default_rng(0)
    layer = rng.integers(0, len(det), 5000)
    phi = rng.uniform(-np.pi, np.pi, 5000)
    lo, hi = det.min_extent[layer], det.max_extent[layer]
    long_coord = rng.uniform(lo - 10, hi + 10)     # also slightly outside: clipped to edge modules
    module = det.module_id(layer, phi, long_coord)
    assert module.min() >= 1
    assert np.all(module <= det.n_modules[layer])
    # the tiling is phi-major: neighbours in phi differ by n_long
    l8 = det.layer_index(8, 2)
    a = det.module_id(np.array([l8]), np.array([0.01]), np.array([0.0]))
    b = det.module_id(np.array([l8]), np.array([0.01 + 2 * np.pi / det.n_phi[l8]]), np.array([0.0]))
    assert int(b[0] - a[0]) == det.n_long[l8]


def test_envelopes_for_graph_builder(det):
    barrel = det.is_barrel
    assert np.all(det.r_min[barrel] < det.position[barrel]) and np.all(det.r_max[barrel] > det.position[barrel])
    assert np.all(det.z_min[~barrel] < det.position[~barrel]) and np.all(det.z_max[~barrel] > det.position[~barrel])
    assert np.all(det.surface_area() > 0)


def test_detector_is_data():
    from gnntrack.detector.geometry import VOLUMES

    small = build_detector(VOLUMES[1:2])      # the pixel barrel alone
    assert len(small) == 4 and small.is_barrel.all()
