"""Detector simulation: surfaces, helix units, realism, truth weights, determinism."""

import numpy as np
import pandas as pd
import pytest

from gnntrack.detector.geometry import default_detector
from gnntrack.detector.particles import generate_particles, particles_frame
from gnntrack.detector.simulate import (
    default_simulation_config, event_rng, helix_radius_mm, simulate_event)
from gnntrack.detector.weights import order_weight_table, pt_weight, trackml_weights
from gnntrack.io.event import HITS_COLUMNS, PARTICLES_COLUMNS, TRUTH_COLUMNS


def small_config(**overrides):
    c = default_simulation_config()
    c.pileup = 10.0
    for k, v in overrides.items():
        c[k] = v
    return c


def simulate(seed=3, event_index=0, **overrides):
    config = small_config(**overrides)
    rng = event_rng(seed, event_index)
    return simulate_event(generate_particles(rng, config), rng, config, event_id=1000 + event_index)


@pytest.fixture(scope="module")
def event():
    return simulate()


def test_tables_follow_trackml_schema(event):
    for df, schema in ((event.hits, HITS_COLUMNS), (event.truth, TRUTH_COLUMNS), (event.particles, PARTICLES_COLUMNS)):
        assert list(df.columns) == list(schema)
        assert {c: df[c].dtype for c in df} == {c: np.dtype(t) for c, t in schema.items()}
    n = len(event.hits)
    assert n > 1000
    np.testing.assert_array_equal(event.hits.hit_id, np.arange(1, n + 1))
    np.testing.assert_array_equal(event.truth.hit_id, event.hits.hit_id)
    pid = event.particles.particle_id.to_numpy()
    assert np.all(pid > 0) and len(np.unique(pid)) == len(pid)
    signal = event.truth.particle_id.to_numpy() != 0
    assert np.isin(event.truth.particle_id[signal], pid).all()
    counts = event.truth.particle_id[signal].value_counts()
    nhits = event.particles.set_index("particle_id").nhits
    np.testing.assert_array_equal(nhits.reindex(counts.index).to_numpy(), counts.to_numpy())
    assert nhits.sum() == signal.sum()
    assert abs((~signal).mean() - 0.1) < 0.01                # default noise fraction


def test_every_hit_lies_on_its_layer_surface(event):
    det = default_detector()
    layer = det.layer_index(event.hits.volume_id, event.hits.layer_id)
    assert np.all(layer >= 0)
    barrel = det.is_barrel[layer]
    for cols in (("x", "y", "z"), ("tx", "ty", "tz")):
        table = event.hits if cols[0] == "x" else event.truth
        x, y, z = (table[c].to_numpy(np.float64) for c in cols)
        r = np.hypot(x, y)
        np.testing.assert_allclose(r[barrel], det.position[layer][barrel], rtol=0, atol=2e-3)   # float32 storage
        np.testing.assert_array_equal(z[~barrel], det.position[layer][~barrel])
    # true crossings lie inside the sensitive area
    tz, tr = event.truth.tz.to_numpy(), np.hypot(event.truth.tx, event.truth.ty).to_numpy()
    long_coord = np.where(barrel, tz, tr)
    assert np.all(long_coord >= det.min_extent[layer] - 1e-3) and np.all(long_coord <= det.max_extent[layer] + 1e-3)
    # module ids follow the tiling
    assert np.all(event.hits.module_id >= 1) and np.all(event.hits.module_id <= det.n_modules[layer])
    # smearing is small and along the surface
    d = np.hypot(event.hits.x - event.truth.tx, event.hits.y - event.truth.ty)
    assert np.median(d[event.truth.particle_id != 0]) < 0.5


def test_helix_radius_units():
    # R[m] = pT[GeV] / (0.3 B[T]): 1 GeV in 2 T -> 1.667 m
    assert helix_radius_mm(1.0, 2.0) == pytest.approx(1000.0 / (0.3 * 2.0), rel=1e-3)
    assert helix_radius_mm(3.0, 4.0) == pytest.approx(2500.0, rel=1e-3)
    for q, pt in ((1, 1.0), (-1, 0.7)):
        particles = particles_frame(particle_id=[1], particle_type=[211 * q], vx=[0.0], vy=[0.0], vz=[0.0],
                                    px=[pt], py=[0.0], pz=[0.3], q=[q])
        config = small_config(multiple_scattering=False, energy_loss=False, smearing=False, inefficiency=False,
                              noise_fraction=0.0, duplicate_fraction=0.0)
        ev = simulate_event(particles, np.random.default_rng(0), config)
        t = ev.truth.sort_values("tz")
        pts = np.stack([t.tx, t.ty], axis=1).astype(np.float64)
        assert len(pts) == 10                                   # all 10 barrel layers at eta ~ 0.3
        # circle through the origin and the first and last hit: its radius is the helix radius
        radius = _circumradius(np.zeros(2), pts[0], pts[-1])
        assert radius == pytest.approx(1000 * pt / (0.3 * 2.0), rel=2e-3)
        # sense of rotation: a positive particle turns clockwise seen from +z (phi decreases)
        phi = np.arctan2(t.tpy, t.tpx).to_numpy()
        assert np.all(np.sign(np.diff(phi)) == -q)
        np.testing.assert_allclose(np.hypot(t.tpx, t.tpy), pt, rtol=1e-6)
        np.testing.assert_allclose(t.tpz, 0.3, rtol=1e-6)
        # z advances linearly with the transverse arc length: dz/ds = pz / pT
        s = 2 * radius * np.arcsin(np.hypot(*pts.T) / (2 * radius))
        np.testing.assert_allclose(t.tz.to_numpy(), s * 0.3 / pt, atol=1e-2)


def _circumradius(a, b, c):
    ab, bc, ca = np.linalg.norm(a - b), np.linalg.norm(b - c), np.linalg.norm(c - a)
    area2 = abs((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]))
    return ab * bc * ca / (2 * area2)


def test_hits_per_particle_realism():
    """pT > 1 GeV, |eta| < 2.5: 9 - 12.5 hits per particle (TrackML ~10.7)."""
    ev = simulate(seed=11, n_particles=600, hard_fraction=1.0, eta_max=2.5, noise_fraction=0.0)
    p = ev.particles
    pt = np.hypot(p.px, p.py)
    eta = np.arcsinh(p.pz / pt)
    sel = (pt > 1) & (np.abs(eta) < 2.5)
    assert sel.sum() > 500
    assert 9.0 <= p.nhits[sel].mean() <= 12.5


def test_loopers_stop_after_half_turn():
    # 0.2 GeV in 2 T: R = 333 mm, so the track reaches r = 2R = 667 mm at most; it crosses the
    # 260, 360, 500, 660 cylinders once each on the way out and never comes back inwards.
    particles = particles_frame(particle_id=[7], vx=[0.0], vy=[0.0], vz=[0.0], px=[0.2], py=[0.0], pz=[0.0], q=[1])
    config = small_config(multiple_scattering=False, energy_loss=False, smearing=False, inefficiency=False,
                          noise_fraction=0.0, duplicate_fraction=0.0)
    ev = simulate_event(particles, np.random.default_rng(0), config)
    r = np.sort(np.hypot(ev.truth.tx, ev.truth.ty).to_numpy())
    np.testing.assert_allclose(r, [32, 72, 116, 172, 260, 360, 500, 660], atol=1e-3)


def test_weights_follow_trackml_rules(event):
    w = event.truth.weight.to_numpy(np.float64)
    assert w.sum() == pytest.approx(1.0, abs=1e-5)
    assert np.all(w >= 0)
    assert np.all(w[event.truth.particle_id == 0] == 0)
    nhits = event.particles.set_index("particle_id").nhits
    short = event.truth.particle_id.map(nhits).fillna(0).to_numpy() < 4
    assert np.all(w[short] == 0)
    assert np.any(w > 0)


def test_weight_definition():
    table = order_weight_table()
    np.testing.assert_allclose(table[4:].sum(axis=1), 1.0)
    assert np.all(table[:4] == 0)
    row = table[10, :10]
    assert row[0] == row.max() and row[0] > row[4] and row[-1] > row[4]      # ends weigh more
    np.testing.assert_allclose(pt_weight([0.01, 0.3, 0.5, 1.75, 3.0, 10.0]), [0, 0.2, 0.2, 0.6, 1.0, 1.0])
    # two particles: 4 hits at pT 3 GeV, 3 hits (too few) -> all weight on the first
    particles = particles_frame(particle_id=[5, 6], vx=[0, 0], vy=[0, 0], vz=[0.0, 0.0], px=[3.0, 3.0], py=[0, 0],
                                pz=[0, 0], q=[1, 1], nhits=[4, 3])
    pid = np.array([5, 6, 5, 6, 5, 6, 5, 0])
    tz = np.array([4.0, 1, 3, 2, 2, 3, 1, 9])
    w = trackml_weights(pid, tz, particles)
    assert w.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(w[[6, 4, 2, 0]], table[4, :4])          # ordered by |tz - vz|
    assert np.all(w[[1, 3, 5, 7]] == 0)


def test_weights_match_trackml_library_semantics(event):
    """Independent pandas formulation of the TrackML phase-1 weights (rank() with averaged ties)."""
    t = event.truth.merge(event.particles[["particle_id", "vz", "nhits", "px", "py"]], how="left", on="particle_id")
    dist = (t.tz - t.vz).abs()
    ihit = dist.groupby(t.particle_id).rank().sub(1).fillna(0).astype(int).to_numpy()
    n = t.nhits.fillna(0).astype(int).to_numpy()
    table = order_weight_table()
    w_order = np.where((n >= 4) & (ihit < 20), table[np.minimum(n, 20), np.minimum(ihit, 19)], 0.0)
    w = pt_weight(np.hypot(t.px, t.py).fillna(0).to_numpy()) * w_order * (t.particle_id != 0).to_numpy()
    np.testing.assert_allclose(event.truth.weight.to_numpy(), w / w.sum(), rtol=1e-5, atol=1e-12)


def test_same_seed_same_event_and_event_streams_independent():
    a, b = simulate(seed=5, event_index=2), simulate(seed=5, event_index=2)
    for part in ("hits", "truth", "particles"):
        pd.testing.assert_frame_equal(getattr(a, part), getattr(b, part))
    c = simulate(seed=5, event_index=3)
    assert len(c.hits) != len(a.hits) or not np.array_equal(c.hits.x, a.hits.x)


def test_switches_reduce_to_ideal_helices():
    ev = simulate(seed=2, n_particles=200, multiple_scattering=False, energy_loss=False, smearing=False,
                  inefficiency=False, noise_fraction=0.0, duplicate_fraction=0.0)
    np.testing.assert_array_equal(ev.hits.x.to_numpy(), ev.truth.tx.to_numpy())
    # pT is conserved along every track without material effects
    pt_hit = np.hypot(ev.truth.tpx, ev.truth.tpy).to_numpy()
    p = ev.particles.set_index("particle_id")
    pt0 = np.hypot(p.px, p.py).reindex(ev.truth.particle_id).to_numpy()
    np.testing.assert_allclose(pt_hit, pt0, rtol=1e-5)
    # each particle crosses each layer at most once in its first half turn
    dup = ev.hits.assign(pid=ev.truth.particle_id).duplicated(["pid", "volume_id", "layer_id"])
    assert not dup.any()
