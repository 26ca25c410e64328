"""Segment training with a history table (gnntrack.train.history, model.history).

The invariant: with a table computed from the same parameters on the whole graph, a one-hop
segment gives every fresh node the state it has in the whole graph and every core edge its
whole-graph logit (to float32 rounding: sums over a node's edges run in another order in the
smaller graph, so not bitwise). Whatever the table is stale by, then, is all that segment training
with it approximates.
"""

import jax
import jraph
import numpy as np
import pytest

from gnntrack.configs.luxe import luxe_config
from gnntrack.detector.luxe import default_luxe_config, simulate_luxe_event
from gnntrack.detector.simulate import event_rng
from gnntrack.errors import ConfigError
from gnntrack.graphs.build import build_event_graphs
from gnntrack.graphs.config import luxe_graph_config
from gnntrack.nn.segment_classifier import SegmentClassifier
from gnntrack.train.history import HistoryTable, padded_state_fn
from gnntrack.train.loop import train_and_evaluate

ITERS, HIDDEN = 2, 8

pytestmark = pytest.mark.usefixtures("compilation_cache")  # tests/train/conftest.py


@pytest.fixture(scope="module")
def event_graphs():
    c = default_luxe_config()
    c.n_particles = 400
    event = simulate_luxe_event(event_rng(11, 0), c, event_id=1000)
    config = luxe_graph_config()
    full = build_event_graphs(event, config)[0]
    config.exact_sections, config.section_hops, config.section_by = 4, 1, "random"
    return full, build_event_graphs(event, config)


def _pad(g, n, e):
    p = jraph.pad_with_graphs(g.graph._replace(globals=None), n, e, 2)
    return p._replace(senders=p.senders.astype(np.int32), receivers=p.receivers.astype(np.int32))


def test_fresh_table_gives_segments_the_whole_graph_logits(event_graphs):
    full, segments = event_graphs
    model = SegmentClassifier(hidden=HIDDEN, n_iters=ITERS, history=True, history_dropout=0.5)
    params = jax.jit(model.init)(jax.random.PRNGKey(0), full.graph)["params"]
    n_pad, e_pad = full.n_nodes + 1, full.n_edges + 1
    apply = jax.jit(lambda g, train: model.apply({"params": params}, g, train=train, return_states=True),
                    static_argnums=1)
    full_logits = np.asarray(apply(_pad(full, n_pad, e_pad), False)[0])[:full.n_edges]
    table = HistoryTable.build(segments, [full], ITERS, HIDDEN + full.graph.nodes.shape[1])
    table.refresh(padded_state_fn(lambda g: apply(g, False)[1], [full]))
    assert 0.0 < table.stale_fraction() < 1.0
    index = {e: i for i, e in enumerate(zip(full.hit_id[full.graph.senders], full.hit_id[full.graph.receivers]))}
    worst_with, worst_without = 0.0, 0.0
    for segment, wide in zip(segments, table.graphs()):
        core = np.flatnonzero(segment.edge_mask)
        rows = [index[(segment.hit_id[s], segment.hit_id[r])] for s, r in
                zip(segment.graph.senders[core], segment.graph.receivers[core])]
        with_table = np.asarray(apply(_pad(wide, n_pad, e_pad), False)[0])[core]
        plain = np.asarray(apply(_pad(segment, n_pad, e_pad), False)[0])[core]  # raw width: no table
        worst_with = max(worst_with, float(np.max(np.abs(with_table - full_logits[rows]), initial=0)))
        worst_without = max(worst_without, float(np.max(np.abs(plain - full_logits[rows]), initial=0)))
    assert worst_with <= 1e-4
    assert worst_without > 1e-3   # the one-hop halo alone is short of 2 iterations
    # stale-embedding dropout acts in training only
    wide = table.graphs()[0]
    dropped = model.apply({"params": params}, _pad(wide, n_pad, e_pad), train=True,
                          rngs={"dropout": jax.random.PRNGKey(1)})
    kept = model.apply({"params": params}, _pad(wide, n_pad, e_pad), train=False)
    core = np.flatnonzero(wide.edge_mask)
    assert np.max(np.abs(np.asarray(dropped)[core] - np.asarray(kept)[core])) > 1e-4


def _gst_config(crossings, root):
    config = luxe_config("gst")
    config.data.input_dir, config.data.cache_dir = str(crossings), str(root / "cache")
    config.data.n_train, config.data.n_val, config.data.n_test = 2, 1, 0
    config.graph.exact_sections = 4
    config.model.hidden, config.model.n_iters = HIDDEN, ITERS
    config.train.epochs = 2
    config.train.progress = config.train.tensorboard = False
    return config


def test_gst_run_refreshes_the_table_every_epoch(luxe_crossings, tmp_path, monkeypatch):
    refreshes = []
    original = HistoryTable.refresh

    def counting(self, node_states):
        original(self, node_states)
        refreshes.append(float(np.abs(next(iter(self.states.values()))).sum()))

    monkeypatch.setattr(HistoryTable, "refresh", counting)
    result = train_and_evaluate(_gst_config(luxe_crossings, tmp_path), tmp_path / "gst")
    assert result["steps"] == 2 * 4 * 2 and np.isfinite(result["loss"])
    assert len(refreshes) == 2 and all(r > 0 for r in refreshes)  # at the start of epochs 0 and 1
    assert refreshes[0] != refreshes[1]                            # from the parameters of each
    assert 0.0 <= result["val_f1"] <= 1.0                          # whole graphs, raw inputs


def test_history_needs_segments_and_the_reference_form(luxe_crossings, tmp_path):
    config = _gst_config(luxe_crossings, tmp_path)
    config.graph.exact_sections = 0
    with pytest.raises(ConfigError, match="graph.exact_sections"):
        train_and_evaluate(config, tmp_path / "a")
    config = _gst_config(luxe_crossings, tmp_path)
    config.model.impl = "fast"
    with pytest.raises(ConfigError, match="model.impl='reference'"):
        train_and_evaluate(config, tmp_path / "b")
