"""Training data splits from `config.data`: graphs without edges are named, not silently used."""

import logging

import numpy as np
import pytest

from gnntrack.errors import InputError
from gnntrack.graphs.batching import synthetic_hit_graph
from gnntrack.graphs.store import graph_file_name, save_graph
from gnntrack.train.data import prepare_data
from gnntrack.train.defaults import default_config


def _graph_dir(tmp_path, edges_per_event):
    """A `build-graphs`-style directory: one random graph per event with the given edge counts."""
    rng = np.random.default_rng(0)
    out = tmp_path / "graphs"
    out.mkdir()
    for event_id, n_edge in edges_per_event.items():
        save_graph(synthetic_hit_graph(rng, 6, n_edge, event_id=event_id), out / graph_file_name(event_id))
    return out


def _config(graphs_dir, n_train, n_val, n_test):
    config = default_config()
    config.data.source = "graphs"
    config.data.input_dir = str(graphs_dir)
    config.data.n_train, config.data.n_val, config.data.n_test = n_train, n_val, n_test
    return config


def test_graphs_without_edges_leave_training_and_are_named(tmp_path, caplog):
    # an event with no edge used to sit in the train split (a batch slot without loss), and in
    # val/test without a word
    graphs_dir = _graph_dir(tmp_path, {1: 20, 2: 0, 3: 15, 4: 0, 5: 10})
    with caplog.at_level(logging.WARNING, logger="gnntrack.train.data"):
        splits = prepare_data(_config(graphs_dir, 3, 1, 1), tmp_path / "run", progress=False)
    assert [g.event_id for g in splits.train] == [1, 3]
    assert [g.event_id for g in splits.val] == [4]  # kept: it adds nothing to pooled edge metrics
    assert splits.info["empty_graphs"] == {"train": ["event 2"], "val": ["event 4"], "test": []}
    text = caplog.text
    assert "1 training graph(s) without edges left out: event 2" in text
    assert "validation graph(s) without edges: event 4" in text


def test_a_train_split_of_empty_graphs_is_an_input_error(tmp_path):
    graphs_dir = _graph_dir(tmp_path, {1: 0, 2: 0, 3: 12})
    with pytest.raises(InputError, match=r"every training graph .* has no edge \(event 1, event 2\)"):
        prepare_data(_config(graphs_dir, 2, 1, 0), tmp_path / "run", progress=False)
