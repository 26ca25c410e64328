"""Metric-learning graph construction: the radius graph, the trained embedding, the config."""

import json

import jax.numpy as jnp
import numpy as np
import pytest

from tests.graphs.graph_events import random_event
from gnntrack.errors import ConfigError, InputError
from gnntrack.graphs import truth as truth_lib
from gnntrack.graphs.build import build_event, prepare, select_nodes
from gnntrack.graphs.config import default_graph_config
from gnntrack.graphs.fit import fit_embedding, particle_pairs
from gnntrack.graphs.metric_learning import (embed, hit_input_names, hit_inputs, load_embedding, radius_edges,
                                             save_embedding)
from gnntrack.graphs.mlp import apply_mlp, init_mlp
from gnntrack.graphs.report import merge_stats, summarize
from gnntrack.graphs.store import build_graph_dir


def tiny_config():
    """A tiny embedding trained in about a second on events of a few hundred hits."""
    config = default_graph_config()
    m = config.metric
    m.dim, m.hidden, m.n_layers, m.steps, m.batch_pairs, m.hard_k, m.mine_every = 4, 32, 2, 300, 128, 4, 50
    m.learning_rate, m.margin, m.radius, m.k_max = 5e-3, 0.5, 0.5, 8
    return config


def tiny_events(seeds, n_particles=40):
    return [random_event(n_particles, n_noise=20, seed=s, duplicate_every=7) for s in seeds]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(metric config naming a trained embedding file, held-out event)."""
    config = tiny_config()
    params = fit_embedding(tiny_events([1, 2, 3]), config, progress=False)
    path = tmp_path_factory.mktemp("metric") / "embedding.npz"
    save_embedding(path, params, config)
    config.method = "metric"
    config.metric.embedding = str(path)
    return config, tiny_events([9])[0]


def _brute_force_pairs(emb, layer, radius, k_max):
    """Unordered pairs (i, j) with j among the k_max nearest other hits of i within radius, or i
    among j's; on different layers."""
    d = np.linalg.norm(emb[:, None] - emb[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    pairs = set()
    for i in range(len(emb)):
        for j in np.argsort(d[i])[:k_max]:
            if d[i, j] <= radius and layer[i] != layer[j]:
                pairs.add((min(i, j), max(i, j)))
    return pairs


@pytest.mark.parametrize("k_max", [2, 5, 500])
def test_radius_edges_equal_brute_force_and_point_outward(k_max):
    rng = np.random.default_rng(0)
    emb = rng.uniform(size=(300, 3))  # continuous random points: no ties between distances
    layer = rng.integers(0, 4, 300)
    dist0 = rng.uniform(size=300)
    s, r = radius_edges(emb, layer, dist0, 0.15, k_max)
    assert s.dtype == np.int32 and r.dtype == np.int32
    assert {(min(a, b), max(a, b)) for a, b in zip(s, r)} == _brute_force_pairs(emb, layer, 0.15, k_max)
    assert len(set(zip(s, r))) == len(s)  # each pair once
    assert np.all(dist0[s] <= dist0[r]) and np.all(layer[s] != layer[r])
    assert radius_edges(emb[:1], layer[:1], dist0[:1], 0.15, k_max)[0].size == 0
    # approximate search: pairs still within the radius, at most k_max from each hit's query
    sa, ra = radius_edges(emb, layer, dist0, 0.15, k_max, eps=1.0)
    assert np.all(np.linalg.norm(emb[sa] - emb[ra], axis=1) <= 0.15)
    assert len(sa) <= len(emb) * min(k_max, len(emb) - 1)


@pytest.mark.parametrize("eps", [0.0, 1.0])
def test_radius_edges_do_not_depend_on_the_query_block(monkeypatch, eps):
    """The KD-tree is queried in blocks of hits; each hit's answer is its own (the same tree and
    search), so any block size gives the same integer pairs, exactly."""
    from gnntrack.graphs import metric_learning

    rng = np.random.default_rng(1)
    emb, layer, dist0 = rng.uniform(size=(200, 3)), rng.integers(0, 4, 200), rng.uniform(size=200)
    whole = radius_edges(emb, layer, dist0, 0.2, 6, eps=eps)
    monkeypatch.setattr(metric_learning, "QUERY_BLOCK", 7)  # 28 full blocks and a partial one
    blocked = radius_edges(emb, layer, dist0, 0.2, 6, eps=eps)
    for w, b in zip(whole, blocked):
        np.testing.assert_array_equal(w, b)


def test_numpy_and_jax_forward_agree():
    params = init_mlp(np.random.default_rng(0), (13, 16, 16, 4))
    x = np.random.default_rng(1).normal(size=(50, 13)).astype(np.float32)
    # Two implementations (numpy BLAS vs XLA): close, not bitwise.
    np.testing.assert_allclose(apply_mlp(params, x), np.asarray(apply_mlp(params, jnp.asarray(x), jnp)),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(embed(params, x, chunk=7), embed(params, x))  # same rows, same BLAS calls


def test_trained_embedding_builds_an_efficient_graph(trained):
    config, event = trained
    config_, layers, pairs = prepare(config)
    graphs, stats = build_event(event, config_, layers, pairs)
    summary = summarize(merge_stats([stats]))
    graph = graphs[0]
    assert summary["efficiency"] >= 0.9 and summary["purity"] > 0.1, summary
    # edges point outward, never join two hits of one layer, at most k_max per hit in each direction
    nodes = select_nodes(event, config_, layers)
    s, r = graph.graph.senders, graph.graph.receivers
    assert np.all(np.hypot(nodes.r[s], nodes.z[s]) <= np.hypot(nodes.r[r], nodes.z[r]))
    assert np.all(nodes.layer[s] != nodes.layer[r])
    assert graph.n_edges <= 2 * config.metric.k_max * graph.n_nodes
    # training pulls true segments together relative to other particles' hit pairs: the untrained
    # (smooth, near-linear) map already keeps near hits near, the trained one at least 1.5x more so
    params, _ = load_embedding(config.metric.embedding)
    assert [w.shape[0] for w, _ in params][0] == len(hit_input_names(config))
    untrained = init_mlp(np.random.default_rng(0), [w.shape[0] for w, _ in params] + [params[-1][0].shape[1]])
    true_pairs = truth_lib.true_pairs(nodes.particle_id, nodes.layer, nodes.half, nodes.key)
    a, b = np.random.default_rng(0).integers(len(nodes), size=(2, 2000))
    other = nodes.particle_id[a] != nodes.particle_id[b]
    x = hit_inputs(nodes)

    def separation(p):
        e = embed(p, x)
        return (np.median(np.linalg.norm(e[true_pairs[:, 0]] - e[true_pairs[:, 1]], axis=1))
                / np.median(np.linalg.norm(e[a[other]] - e[b[other]], axis=1)))

    assert separation(params) < separation(untrained) / 1.5


def test_save_load_round_trip_and_meta(trained):
    config, _ = trained
    params, meta = load_embedding(config.metric.embedding)
    assert meta["kind"] == "embedding" and meta["inputs"][:3] == ["r", "z", "eta"]
    assert meta["graph_config"]["metric"]["dim"] == 4 and params[-1][0].shape[1] == 4
    with np.load(config.metric.embedding) as data:
        assert json.loads(str(data["meta"]))["kind"] == "embedding"


def test_build_graph_dir_reports_a_metric_graph(trained, tmp_path):
    from gnntrack.io.trackml import write_event

    config, event = trained
    write_event(event, tmp_path / "events")
    summary = build_graph_dir(tmp_path / "events", tmp_path / "graphs", config, progress=False)
    for key in ("efficiency", "purity", "mean_edges", "seconds_per_event"):
        assert summary[key] is not None and summary[key] > 0, key
    assert summary["config"]["method"] == "metric"


def test_config_errors(tmp_path):
    config = tiny_config()
    config.method = "metric"
    with pytest.raises(ConfigError, match="graph.metric.embedding"):
        prepare(config)
    config.metric.embedding = str(tmp_path / "missing.npz")
    with pytest.raises(InputError, match="missing.npz"):
        prepare(config)
    (tmp_path / "bad.npz").write_text("not a zip")
    config.metric.embedding = str(tmp_path / "bad.npz")
    with pytest.raises(InputError, match="bad.npz"):
        prepare(config)
    for key, value, match in (("method", "metrics", "graph.method"), ("metric.k_max", 0, "graph.metric.k_max"),
                              ("metric.radius", 0.0, "graph.metric.radius"),
                              ("metric.positives", "tracks", "graph.metric.positives"),
                              ("metric.eps", -1.0, "graph.metric.eps")):
        bad = tiny_config()
        group, _, leaf = key.rpartition(".")
        (bad[group] if group else bad)[leaf] = value
        with pytest.raises(ConfigError, match=match):
            prepare(bad)


def test_fit_needs_truth():
    event = tiny_events([1])[0]
    event.truth = None
    with pytest.raises(InputError, match="no truth"):
        fit_embedding([event], tiny_config(), progress=False)


def test_particle_pairs_are_all_pairs_of_each_particle():
    pid = np.array([3, 0, 3, 5, 3, 5, 7, 7, 7, 7, -1])
    eligible = np.ones(pid.size, bool)
    eligible[9] = False
    got = {tuple(p) for p in particle_pairs(pid, eligible)}
    assert got == {(0, 2), (0, 4), (2, 4), (3, 5), (6, 7), (6, 8), (7, 8)}  # no noise, unknown, ineligible
    assert particle_pairs(np.zeros(4, np.int64), np.ones(4, bool)).shape == (0, 2)


def test_whole_particle_positives_train():
    config = tiny_config()
    config.metric.positives = "particle"
    config.metric.steps = 100
    params = fit_embedding(tiny_events([1]), config, progress=False)
    assert params[-1][0].shape[1] == config.metric.dim and all(np.isfinite(w).all() for w, _ in params)


def test_cli_build_graphs_with_the_metric_experiment(trained, tmp_path, capsys):
    from gnntrack.cli import main
    from gnntrack.io.trackml import write_event

    config, event = trained
    write_event(event, tmp_path / "events")
    args = ["build-graphs", "--input", str(tmp_path / "events"), "--no-progress",
            "--config", "experiments/graphs/metric_all.py"]
    rc = main(args + ["--out", str(tmp_path / "g"), f"--config.metric.embedding={config.metric.embedding}"])
    assert rc == 0
    summary = json.loads((tmp_path / "g" / "summary.json").read_text())
    assert summary["config"]["method"] == "metric" and summary["efficiency"] > 0.5
    # no trained embedding at the path the experiment names: one line naming the file, exit 2
    rc = main(args + ["--out", str(tmp_path / "g2"), f"--config.metric.embedding={tmp_path / 'none.npz'}"])
    err = capsys.readouterr().err
    assert rc == 2 and "none.npz" in err and len(err.strip().splitlines()) == 1
