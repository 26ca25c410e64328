"""Graph construction on hand-made events: exact edges, truth, cuts, wrap-around, bad input."""

import numpy as np
import pandas as pd
import pytest

from tests.graphs.graph_events import random_event
from gnntrack.errors import ConfigError, InputError
from gnntrack.graphs.build import build_event, build_graph, find_edges, prepare, select_nodes
from gnntrack.graphs.config import default_graph_config
from gnntrack.graphs.features import wrap_phi
from gnntrack.graphs.layer_map import trackml_layer_table
from gnntrack.io.event import Event

LAYERS = trackml_layer_table()


def _config(**kw):
    c = default_graph_config()
    for k, v in kw.items():
        c[k] = v
    return c


def _edge_set(g):
    """Set of (sender hit_id, receiver hit_id)."""
    return set(zip(g.hit_id[g.graph.senders].tolist(), g.hit_id[g.graph.receivers].tolist()))


def _manual_event(rows, truth=True):
    """rows: (hit_id, x, y, z, volume, layer, particle_id)."""
    a = np.array(rows, dtype=np.float64)
    n = len(a)
    hits = pd.DataFrame({"hit_id": a[:, 0].astype(np.int64), "x": a[:, 1].astype(np.float32),
                         "y": a[:, 2].astype(np.float32), "z": a[:, 3].astype(np.float32),
                         "volume_id": a[:, 4].astype(np.int32), "layer_id": a[:, 5].astype(np.int32),
                         "module_id": np.ones(n, np.int32)})
    t = None
    if truth:
        # momentum along the position (straight tracks from the origin), pT = 10 GeV
        r = np.hypot(a[:, 1], a[:, 2])
        t = pd.DataFrame({"hit_id": hits.hit_id, "particle_id": a[:, 6].astype(np.int64), "tx": hits.x,
                          "ty": hits.y, "tz": hits.z, "tpx": (10 * a[:, 1] / r).astype(np.float32),
                          "tpy": (10 * a[:, 2] / r).astype(np.float32), "tpz": (10 * a[:, 3] / r).astype(np.float32),
                          "weight": np.ones(n, np.float32)})
    return Event(event_id=7, hits=hits, truth=t)


def _polar(r, phi, z):
    return r * np.cos(phi), r * np.sin(phi), z


def test_hand_made_event_exact_edges_and_labels():
    # Two straight tracks at phi = 0.3 and 0.31 through the four pixel barrel layers, one noise hit.
    rows = []
    for pid, phi in ((1, 0.30), (2, 0.31)):
        for k, (lay, r) in enumerate(zip((2, 4, 6, 8), (32.0, 72.0, 116.0, 172.0))):
            rows.append((pid * 10 + k, *_polar(r, phi, r * 0.5), 8, lay, pid))
    rows.append((99, *_polar(72.0, -2.0, 0.0), 8, 4, 0))  # noise, far away in phi
    event = _manual_event(rows)
    config = _config(selection="barrel_pixel", phi_slope_max=0.0003, z0_max=50.0)
    g = build_graph(event, config, detector=LAYERS)
    # dphi between the tracks is 0.01 rad; with dr = 40 mm the cross slope is 2.5e-4 < 3e-4:
    # each inner hit connects to both tracks' next hits -> 2 x 2 edges per adjacent barrel pair,
    # plus the skip-one pairs (geometric_skip = 1) where 0.01 / dr < 3e-4 too.
    edges = _edge_set(g)
    true = {(10, 11), (11, 12), (12, 13), (20, 21), (21, 22), (22, 23)}
    assert true <= edges
    assert (10, 21) in edges and (20, 11) in edges        # fakes between close tracks
    assert not any(99 in e for e in edges)                # noise is far in phi
    y = dict(zip(zip(g.hit_id[g.graph.senders].tolist(), g.hit_id[g.graph.receivers].tolist()), g.y.tolist()))
    assert all(y[e] == 1.0 for e in true)
    assert sum(g.y) == len(true)
    assert all(v == 0.0 for e, v in y.items() if e not in true)
    # Senders are inner hits; edge pT is the particle pT on true edges, 0 on fakes.
    r = np.hypot(g.graph.nodes[:, 0], 0) * 1000
    assert np.all(r[g.graph.senders] < r[g.graph.receivers])
    assert np.allclose(g.edge_pt[g.y == 1], 10.0, rtol=1e-5) and np.all(g.edge_pt[g.y == 0] == 0)
    assert g.graph.n_node.tolist() == [9] and g.graph.n_edge.tolist() == [len(edges)]
    assert sorted(g.particle_id.tolist()) == [0, 1, 1, 1, 1, 2, 2, 2, 2]


def _brute_force(nodes, pairs, config):
    """Reference O(N^2) segment search."""
    out = set()
    for la, lb in pairs:
        a = np.flatnonzero(nodes.layer == la)
        b = np.flatnonzero(nodes.layer == lb)
        if a.size == 0 or b.size == 0:
            continue
        ia, ib = np.meshgrid(a, b, indexing="ij")
        ia, ib = ia.ravel(), ib.ravel()
        dr = nodes.r[ib] - nodes.r[ia]
        dphi = wrap_phi(nodes.phi[ib] - nodes.phi[ia])
        with np.errstate(divide="ignore", invalid="ignore"):
            z0 = nodes.z[ia] - nodes.r[ia] * (nodes.z[ib] - nodes.z[ia]) / dr
        ok = (np.abs(dr) > 1e-6) & (np.abs(dphi) <= config.phi_slope_max * np.abs(dr)) & (np.abs(z0) <= config.z0_max)
        out |= set(zip(ia[ok].tolist(), ib[ok].tolist()))
    return out


@pytest.mark.parametrize("chunk", [4_000_000, 7])
def test_window_search_equals_brute_force(chunk):
    event = random_event(150, n_noise=300, seed=3, pt_range=(0.3, 3.0))
    config, layers, pairs = prepare(_config(chunk_size=chunk), LAYERS)
    nodes = select_nodes(event, config, layers)
    s, r = find_edges(nodes, pairs, config)
    found = set(zip(s.tolist(), r.tolist()))
    assert len(found) == len(s)  # no duplicate edges
    assert found == _brute_force(nodes, pairs, config)


def test_ideal_helices_full_efficiency_and_pt_table():
    event = random_event(300, n_noise=100, seed=1, pt_range=(0.6, 5.0))
    graphs, stats = build_event(event, _config(phi_slope_max=0.0006), LAYERS, prepare(None, LAYERS)[2])
    assert stats["true_segments"] > 500
    assert stats["found_segments"] == stats["true_segments"]
    assert 0 < stats["true_edges"] < stats["edges"]
    assert stats["true_edges"] == int(graphs[0].y.sum())
    # pT >= t restricts to hits of particles above t: fewer edges, higher purity.
    b = stats["by_pt_min"]
    purity = [b[t]["true_edges"] / b[t]["edges"] for t in ("0.5", "1", "2")]
    assert purity[0] < purity[1] < purity[2]


def test_cut_monotonicity_looser_contains_tighter():
    event = random_event(200, n_noise=200, seed=2)
    sets = []
    for slope, z0 in ((0.0003, 100.0), (0.0006, 150.0), (0.001, 300.0)):
        g = build_graph(event, _config(phi_slope_max=slope, z0_max=z0, deta_max=0.0), detector=LAYERS)
        sets.append(_edge_set(g))
    assert sets[0] <= sets[1] <= sets[2] and len(sets[0]) < len(sets[2])
    g_eta = build_graph(event, _config(phi_slope_max=0.001, z0_max=300.0, deta_max=0.05), detector=LAYERS)
    assert _edge_set(g_eta) < sets[2]


def test_phi_wrap_around_connects_across_pi():
    eps = 0.002
    rows = [(1, *_polar(32.0, np.pi - eps, 10.0), 8, 2, 1), (2, *_polar(72.0, -np.pi + eps, 22.0), 8, 4, 1),
            (3, *_polar(72.0, 0.0, 22.0), 8, 4, 2), (4, *_polar(32.0, -np.pi + eps, 10.0), 8, 2, 3)]
    g = build_graph(_manual_event(rows), _config(selection="barrel_pixel", phi_slope_max=0.001, z0_max=100.0),
                    detector=LAYERS)
    assert _edge_set(g) == {(1, 2), (4, 2)}
    y = dict(zip(zip(g.hit_id[g.graph.senders].tolist(), g.hit_id[g.graph.receivers].tolist()), g.y.tolist()))
    assert y == {(1, 2): 1.0, (4, 2): 0.0}
    assert np.all(np.abs(g.graph.edges[:, 1]) < 0.01)  # dphi/pi is small (wrapped), not ~2


def test_empty_layers_and_empty_selection():
    # Only two layers populated (pixel barrel 1 and 3): pairs with empty layers are skipped.
    rows = [(1, *_polar(32.0, 1.0, 0.0), 8, 2, 1), (2, *_polar(116.0, 1.0, 0.0), 8, 6, 1)]
    g = build_graph(_manual_event(rows), _config(selection="barrel_pixel"), detector=LAYERS)
    assert _edge_set(g) == {(1, 2)}  # skip pair 8/2 -> 8/6
    # No hit in the selection -> an empty graph (documented), not an error.
    rows = [(1, *_polar(300.0, 1.0, 0.0), 13, 2, 1)]
    g = build_graph(_manual_event(rows), _config(selection="pixel"), detector=LAYERS)
    assert g.n_nodes == 0 and g.n_edges == 0
    assert g.graph.nodes.shape == (0, 3) and g.graph.edges.shape == (0, 5)


def test_duplicates_on_a_layer():
    # Particle 1 leaves two hits on layer 8/4 (module overlap): both A-B and A-B' and B-C, B'-C are true.
    rows = [(1, *_polar(32.0, 0.5, 0.0), 8, 2, 1), (2, *_polar(72.0, 0.5, 0.0), 8, 4, 1),
            (3, *_polar(73.0, 0.5005, 0.0), 8, 4, 1), (4, *_polar(116.0, 0.5, 0.0), 8, 6, 1)]
    config = _config(selection="barrel_pixel", geometric_skip=0)
    graphs, stats = build_event(_manual_event(rows), config, LAYERS, prepare(config, LAYERS)[2])
    g = graphs[0]
    assert _edge_set(g) == {(1, 2), (1, 3), (2, 4), (3, 4)} and g.y.sum() == 4
    assert stats["true_segments"] == 4 and stats["found_segments"] == 4
    # remove_duplicates keeps the first hit along the path (hit 2, closer to the vertex).
    config.remove_duplicates = True
    g = build_graph(_manual_event(rows), config, detector=LAYERS)
    assert sorted(g.hit_id.tolist()) == [1, 2, 4] and _edge_set(g) == {(1, 2), (2, 4)}


def test_truth_orders_by_path_not_radius():
    # A 0.1 GeV particle (R = 167 mm) reaches r = 2R sin(a/2) <= 333 mm: in the pixel barrel
    # it crosses r = 116 and r = 172 going out; make a looper return through 172 -> 116 by
    # giving hits on the way back (alpha > pi). Order must be by path, not radius.
    from gnntrack.graphs.truth import path_keys, true_pairs

    R = 0.1 * 1000 / 0.6
    alpha = np.array([0.5, 1.0, 2.0, 4.5, 5.5])  # last two are on the returning half
    x, y = R * np.sin(alpha), -R * (np.cos(alpha) - 1)
    px, py = np.cos(alpha), np.sin(alpha)
    half, key = path_keys(x, y, alpha * 10.0, px, py, 0.0, 0.0, 0.0)
    assert half.tolist() == [0, 0, 0, 1, 1]
    order = np.lexsort((key, half))
    assert order.tolist() == [0, 1, 2, 3, 4]
    layer = np.arange(5)
    pairs = true_pairs(np.ones(5, np.int64), layer, half, key)
    assert pairs.tolist() == [[0, 1], [1, 2], [2, 3], [3, 4]]
    radius_order = np.argsort(np.hypot(x, y))
    assert radius_order.tolist() != [0, 1, 2, 3, 4]


def test_endcap_edges_and_duplicates_from_generator():
    event = random_event(100, seed=5, eta_max=3.5, duplicate_every=5)
    config = _config()
    graphs, stats = build_event(event, config, LAYERS, prepare(config, LAYERS)[2])
    g = graphs[0]
    endcap = ~LAYERS.is_barrel[g.layer]
    assert endcap.any() and (endcap[g.graph.senders] & (g.y == 1)).any()
    assert stats["found_segments"] == stats["true_segments"]


def test_features_and_shapes():
    event = random_event(50, seed=4)
    config = _config()
    config.features.node = ("r", "phi", "z", "eta")
    g = build_graph(event, config, detector=LAYERS)
    x = g.graph.nodes
    assert x.shape == (g.n_nodes, 4) and x.dtype == np.float32
    assert np.all(np.abs(x[:, 1]) <= 1.0) and np.all(x[:, 0] > 0.03) and np.all(x[:, 0] < 0.2)
    e = g.graph.edges
    assert e.shape == (g.n_edges, 5) and e.dtype == np.float32
    s, r = g.graph.senders, g.graph.receivers
    assert np.allclose(e[:, 0], x[r, 0] - x[s, 0], atol=1e-6)
    assert np.allclose(e[:, 2], x[r, 2] - x[s, 2], atol=1e-6)
    assert g.graph.senders.dtype == np.int32 and g.hit_id.dtype == np.int64 and g.layer.dtype == np.int32


def test_bad_input_errors():
    event = random_event(20, seed=0)
    no_truth = Event(event_id=3, hits=event.hits)
    with pytest.raises(InputError, match="no truth.*pt_min"):
        build_graph(no_truth, _config(pt_min=1.0), detector=LAYERS)
    # without truth cuts a graph is still built (inference), with unknown particles
    g = build_graph(no_truth, _config(), detector=LAYERS)
    assert g.n_edges > 0 and np.all(g.particle_id == -1) and g.y.sum() == 0
    with pytest.raises(ConfigError, match="selection"):
        build_graph(event, _config(selection="pixels"), detector=LAYERS)
    with pytest.raises(ConfigError, match="phi_slope_max"):
        build_graph(event, _config(phi_slope_max=-1.0), detector=LAYERS)
    bad = event.hits.copy()
    bad.loc[0, "volume_id"] = 42
    with pytest.raises(InputError, match=r"unknown to the detector.*42"):
        build_graph(Event(event_id=1, hits=bad, truth=event.truth), _config(), detector=LAYERS)
    with pytest.raises(InputError, match="max_edges"):
        build_graph(event, _config(max_edges=3), detector=LAYERS)
    with pytest.raises(InputError, match="max_nodes"):
        build_graph(event, _config(max_nodes=3), detector=LAYERS)
    config = _config()
    config.features.node = ("r", "cell_count")
    with pytest.raises(InputError, match="cells"):
        build_graph(event, config, detector=LAYERS)
    with pytest.raises(InputError, match="truth table lacks"):
        build_graph(Event(event_id=1, hits=event.hits, truth=event.truth.iloc[1:]), _config(), detector=LAYERS)


def test_cell_features():
    event = random_event(20, seed=0)
    n = len(event.hits)
    event.cells = pd.DataFrame({"hit_id": np.repeat(event.hits.hit_id.to_numpy(), 2)[: 2 * n - 1],
                                "ch0": np.zeros(2 * n - 1, np.int32), "ch1": np.zeros(2 * n - 1, np.int32),
                                "value": np.full(2 * n - 1, 0.5, np.float32)})
    config = _config()
    config.features.node = ("r", "cell_count", "cell_value")
    g = build_graph(event, config, detector=LAYERS)
    counts = np.round(g.graph.nodes[:, 1] * 10).astype(int)
    assert set(counts.tolist()) <= {1, 2} and (counts == 2).sum() >= g.n_nodes - 1
    assert np.allclose(g.graph.nodes[:, 2], counts * 0.5)


def test_cell_shape_features_come_from_the_simulated_clusters():
    from gnntrack.detector.cells import cluster_shape
    from gnntrack.detector.simulate import default_simulation_config, event_rng, generate_particles, simulate_event
    from gnntrack.graphs.metric_learning import hit_input_names, hit_inputs

    sim = default_simulation_config()
    sim.pileup, sim.cells = 2.0, True
    rng = event_rng(0, 0)
    event = simulate_event(generate_particles(rng, sim), rng, sim)
    config = _config()
    config.features.node = ("r", "cell_angle_v", "cell_count", "cell_angle_u")
    g = build_graph(event, config, detector=LAYERS)
    volume = event.hits.set_index("hit_id")["volume_id"].reindex(g.hit_id).to_numpy()
    shape = cluster_shape(event.cells, g.hit_id, volume)
    np.testing.assert_allclose(g.graph.nodes[:, 1], shape["cell_angle_v"], rtol=1e-6)
    np.testing.assert_allclose(g.graph.nodes[:, 2], shape["cell_count"] / 10, rtol=1e-6)
    assert g.graph.nodes[:, 1].max() > 0.3           # barrel pixels see long clusters at large |eta|
    # the metric-learning inputs append the same cell features, in the config's order
    nodes = select_nodes(event, config, LAYERS)
    names = hit_input_names(config)
    assert names[-3:] == ("cell_angle_v", "cell_count", "cell_angle_u")
    np.testing.assert_allclose(hit_inputs(nodes)[:, names.index("cell_angle_u")], nodes.cells["cell_angle_u"], rtol=1e-6)


def test_truth_order_and_missing_particles_table():
    event = random_event(80, n_noise=30, seed=6, duplicate_every=5)
    config = _config(pt_min=0.7, remove_noise=True, remove_duplicates=True)
    ref = build_graph(event, config, detector=LAYERS)
    shuffled = Event(event_id=event.event_id, hits=event.hits, particles=event.particles,
                     truth=event.truth.sample(frac=1.0, random_state=0).reset_index(drop=True))
    g = build_graph(shuffled, config, detector=LAYERS)
    assert _edge_set(g) == _edge_set(ref) and np.array_equal(g.y, ref.y)
    # Without a particles table pT comes from the truth momentum at the hits (same for ideal
    # helices) and the vertex defaults to the origin (the helices start at z = vz, so only the
    # ordering keys shift): the same segments are found.
    g = build_graph(Event(event_id=1, hits=event.hits, truth=event.truth), config, detector=LAYERS)
    assert _edge_set(g) == _edge_set(ref) and g.y.sum() == ref.y.sum()
