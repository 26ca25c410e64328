"""Device study: random vs like-sized dealing, straggler ratio, efficiency arithmetic, and a tiny
end-to-end run on 1 and 2 forced host devices (subprocesses) writing results with weak-scaling
efficiency and straggler ratios."""

import json
import os

os.environ.setdefault("PJRT_NPROC", "8")

import numpy as np
import pandas as pd
import pytest

import gnntrack.config
import gnntrack.nn.registry
from gnntrack.config import config_to_dict, load_config
from gnntrack.errors import ConfigError
from gnntrack.graphs.batching import default_batching_config, make_batch, make_ladder, synthetic_hit_graph
from gnntrack.nn.registry import build_model
from gnntrack.studies import devices as D
from gnntrack.studies.provenance import read_results_csv
from tests.test_config import write_plugin_experiment


def test_random_dealing_and_straggler_ratio():
    parts = D.deal_random(7, 3)
    assert [len(p) for p in parts] == [3, 2, 2]
    np.testing.assert_array_equal(np.concatenate(parts), np.arange(7))
    assert D.straggler_ratio(np.array([10, 10, 10])) == 1.0
    assert D.straggler_ratio(np.array([30, 10, 20])) == pytest.approx(1.5)
    rng = np.random.default_rng(0)
    graphs = [synthetic_hit_graph(rng, int(n), int(e), event_id=i)
              for i, (n, e) in enumerate(zip(rng.integers(5, 40, 16), rng.integers(10, 200, 16)))]
    cfg = default_batching_config()
    cfg.graphs_per_step = 8
    ladder = make_ladder(graphs, cfg, 2)
    ids = np.arange(8)
    rnd = D.make_random_batch(graphs, ids, 2, ladder, 5)
    like = make_batch(graphs, ids, 2, ladder, 5)
    assert rnd.shape[0] == 2 and rnd.n_graphs == 8
    assert rnd.n_real_edges.sum() == like.n_real_edges.sum() == sum(g.n_edges for g in graphs[:8])
    np.testing.assert_array_equal(rnd.edge_mask.sum(axis=1), rnd.n_real_edges)
    assert D.straggler_ratio(like.n_real_edges) <= D.straggler_ratio(rnd.n_real_edges)
    np.testing.assert_array_equal(np.sort(rnd.graph_ids[rnd.graph_ids >= 0]), ids)


def test_efficiency_arithmetic():
    df = pd.DataFrame({"n_devices": [1, 2, 4], "mode": "weak", "batching": "like_sized",
                       "graphs_per_s": [100.0, 150.0, 200.0]})
    out = D.add_efficiency(df)
    np.testing.assert_allclose(out.efficiency, [1.0, 0.75, 0.5])
    np.testing.assert_allclose(out.speedup, [1.0, 1.5, 2.0])


def test_config_errors():
    config = load_config("experiments/scaling/devices.py", ["study.batchings=('sorted',)"])
    with pytest.raises(ConfigError, match="study.batchings"):
        D.split_device_study_config(config)


def test_device_study_on_one_and_two_forced_devices(tmp_path):
    config = load_config("experiments/scaling/devices.py", [
        "study.device_counts=(1, 2)", "study.steps=2", "study.warmup_steps=0", "study.toy.n_events=24",
        "data.n_train=24", "study.strong_batch=4", "study.weak_per_device=2", "batching.max_buckets=1",
        "model.hidden=8", "study.timeout_s=240"])
    out = D.run_device_study(config, tmp_path, progress=False)
    assert not out["errors"]
    df, prov = read_results_csv(tmp_path / "results.csv")
    assert set(df.n_devices) == {1, 2} and set(df["mode"]) == {"strong", "weak"}
    assert set(df.batching) == {"like_sized", "random"}
    assert (df.graphs_per_s > 0).all() and (df.edges_per_s > 0).all()
    assert df.efficiency.notna().all()
    one = df[df.n_devices == 1]
    np.testing.assert_allclose(one.efficiency, 1.0)
    np.testing.assert_allclose(one.straggler_ratio, 1.0)
    weak2 = df[(df.n_devices == 2) & (df["mode"] == "weak")]
    assert (weak2.global_batch == 4).all() and (weak2.straggler_ratio >= 1.0).all()
    assert np.allclose(df.input_ms + df.compute_ms, df.step_ms)
    assert prov["worker_devices"]["2"]["n_devices"] == 2 and prov["commit"]
    for name in ("results.md", "results.json", "throughput.png", "efficiency.png", "step_breakdown.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert "straggler" in (tmp_path / "results.md").read_text()


def test_a_device_count_subprocess_imports_the_configs_plugins(tmp_path, monkeypatch):
    """The worker rebuilds its config from the JSON payload: a model registered in a file named by
    `config.imports` must be known there (a fresh process: neither imported nor registered yet)."""
    config = load_config(write_plugin_experiment(tmp_path / "project"), ["--config.model.name=plugin_edge_mlp"])
    monkeypatch.setattr(gnntrack.config, "_IMPORTED", set())
    monkeypatch.delitem(gnntrack.nn.registry._MODELS, "plugin_edge_mlp")
    monkeypatch.setattr(D, "stop_with_parent", lambda sig: None)  # not this test process
    monkeypatch.setattr(D, "measure", lambda config, study, n, workdir: [
        {"model": type(build_model(config.model)).__name__}])
    payload = tmp_path / "payload.json"
    payload.write_text(json.dumps({"config": config_to_dict(config), "study": {}, "n_devices": 1,
                                   "workdir": str(tmp_path)}))
    D.worker_main(str(payload), str(tmp_path / "out.json"))
    assert json.loads((tmp_path / "out.json").read_text())["rows"] == [{"model": "PluginEdgeMLP"}]
