"""Data source 'jets': one edgeless graph per jet, seeded splits, and a whole run through the
engine (batching, train step, evaluation) on such graphs."""

import json

import numpy as np
import pytest

from gnntrack.errors import ConfigError
from gnntrack.jets.preprocess import particlenet_features
from gnntrack.jets.graphs import jet_graphs, split_indices
from gnntrack.train.sources import registered_source
from tests.jets.conftest import tiny_jets_config


def test_each_jet_is_a_graph_of_its_real_constituents_without_edges(jets_small):
    jets = jets_small
    jets.weight = np.linspace(0.5, 2.0, len(jets)).astype(np.float32)  # ATLAS-like training weights
    graphs = jet_graphs(jets, 30, "p4")
    features, mask = particlenet_features(jets, 30)
    for i in (0, 1, 7):
        g = graphs[i]
        n = min(int(jets.n_constituents[i]), 30)
        assert g.n_nodes == n and g.n_edges == 0 and g.event_id == i
        np.testing.assert_array_equal(g.graph.nodes, features[i, :n, :4])
        assert g.graph.senders.dtype == np.int32 and g.y.shape == (0,)
        np.testing.assert_array_equal(g.graph_y, [jets.label[i], jets.weight[i]])
    jets.weight = np.ones(len(jets), np.float32)


def test_the_splits_are_seeded_disjoint_and_a_smaller_fraction_is_a_subset():
    train, val, test = split_indices(100, 0.1, 0.2, 1.0, seed=3)
    assert (len(train), len(val), len(test)) == (70, 10, 20)
    assert len(set(train) | set(val) | set(test)) == 100
    small, val_s, test_s = split_indices(100, 0.1, 0.2, 0.1, seed=3)
    assert len(small) == 7 and set(small) <= set(train)
    np.testing.assert_array_equal(val_s, val)
    np.testing.assert_array_equal(test_s, test)


def test_source_keys_are_checked_by_name(tmp_path, jet_files):
    prepare = registered_source("jets").prepare
    for key, value in (("paths", ()), ("features", "p5"), ("fraction", 0.0), ("n_constituents", 0),
                       ("val_fraction", 0.9)):
        config = tiny_jets_config(jet_files)
        config.data.jets[key] = value
        with pytest.raises(ConfigError, match=rf"data\.jets\.{key}"):
            prepare(config, tmp_path)


def test_a_jets_run_trains_and_evaluates_edgeless_graphs(teacher_run):
    result, run = teacher_run
    assert result["steps"] == 12 and result["n_test_items"] == 32
    # 12 steps only check the path (batching, train step, evaluation); learning is measured on real jets
    assert np.isfinite(result["val_loss"]) and 0.0 <= result["val_auc"] <= 1.0
    assert result["test_auc_low"] <= result["test_auc"] <= result["test_auc_high"]
    preds = np.load(run / "test_predictions.npz")
    assert preds["scores"].shape == (32,) and preds["targets"].shape == (32, 2)
    info = json.loads((run / "config.json").read_text())
    assert info["data"]["source"] == "jets"
