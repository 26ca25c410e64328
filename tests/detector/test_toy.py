"""Planes toy: tracks on planes, 2D/3D, straight/curved, TrackML tables."""

import numpy as np
import pytest

from gnntrack.cli import main
from gnntrack.detector.toy import default_toy_config, planes_detector, simulate_toy_event, toy_track_positions
from gnntrack.errors import ConfigError
from gnntrack.io.event import HITS_COLUMNS, TRUTH_COLUMNS


def toy(**overrides):
    c = default_toy_config()
    for k, v in overrides.items():
        c[k] = v
    return c


def test_straight_2d_hits_on_lines():
    c = toy(sigma=0.0, n_tracks=20)
    ev = simulate_toy_event(np.random.default_rng(0), c)
    assert len(ev.hits) == 20 * 10
    assert list(ev.hits.columns) == list(HITS_COLUMNS) and list(ev.truth.columns) == list(TRUTH_COLUMNS)
    assert (ev.hits.z == 0).all() and (ev.hits.volume_id == 1).all()
    assert sorted(ev.hits.layer_id.unique()) == list(range(2, 22, 2))
    np.testing.assert_allclose(np.sort(ev.hits.x.unique()), 100.0 * np.arange(1, 11))
    for pid, g in ev.truth.groupby("particle_id"):
        slope = np.polyfit(g.tx, g.ty, 1, full=True)
        assert slope[1].size == 0 or slope[1][0] < 1e-3          # collinear
    assert ev.truth.weight.sum() == pytest.approx(1.0, abs=1e-5)
    assert (ev.particles.nhits == 10).all()


def test_curved_3d():
    c = toy(dims=3, curved=True, noise_fraction=0.2, n_tracks=30, sigma=0.0)
    ev = simulate_toy_event(np.random.default_rng(1), c)
    signal = ev.truth.particle_id != 0
    assert abs((~signal).mean() - 0.2) < 0.03
    assert (ev.truth.weight[~signal] == 0).all()
    assert ev.hits.z.abs().max() > 1.0
    np.testing.assert_allclose(ev.hits.x % 100.0, 0.0)                # every hit on a plane
    # curved tracks: points of one track lie on a circle of radius 1/|kappa| = 0.3 B / pT
    p = ev.particles.set_index("particle_id")
    checked = 0
    for pid, g in ev.truth[signal].groupby("particle_id"):
        if len(g) < 3:
            continue
        pts = g.sort_values("tx")[["tx", "ty"]].to_numpy(np.float64)
        a, b, m = pts[0], pts[-1], pts[len(pts) // 2]
        cross = abs((b[0] - a[0]) * (m[1] - a[1]) - (b[1] - a[1]) * (m[0] - a[0]))
        radius = np.linalg.norm(a - b) * np.linalg.norm(b - m) * np.linalg.norm(m - a) / (2 * cross)
        pt = np.hypot(p.px[pid], p.py[pid])
        assert radius == pytest.approx(1000 * pt / (0.299792458 * 2.0), rel=2e-2)
        checked += 1
    assert checked > 20


def test_straight_limit_is_exact():
    x = np.array([100.0, 200.0])
    y, z, ang = toy_track_positions(x, np.array([1.0]), np.array([0.0]), np.array([0.3]), np.array([0.0]),
                                    np.array([0.5]))
    np.testing.assert_allclose(y[0], 1.0 + x * np.tan(0.3))
    np.testing.assert_allclose(z[0], 0.5 * x)


def test_planes_detector_and_cli(tmp_path):
    c = toy(n_planes=6)
    det = planes_detector(c)
    assert det.layer_index(np.array([1, 1, 8]), np.array([2, 12, 2])).tolist() == [0, 5, -1]
    args = ["simulate", "--toy", "planes", "--toy-planes", "6", "--toy-dims", "3", "--toy-curved", "--events", "2",
            "--no-progress"]
    assert main(args + ["--out", str(tmp_path / "a")]) == 0
    assert main(args + ["--out", str(tmp_path / "b")]) == 0
    for f in (tmp_path / "a").iterdir():
        assert f.read_bytes() == (tmp_path / "b" / f.name).read_bytes()
    from gnntrack.io.trackml import read_event

    ev = read_event(tmp_path / "a" / "event000001001")
    assert ev.hits.layer_id.max() == 12


def test_bad_toy_config():
    with pytest.raises(ConfigError, match="dims"):
        simulate_toy_event(np.random.default_rng(0), toy(dims=4))
