"""Edge filter: edge inputs, training, pruning inside build_event, the filter summary."""

import numpy as np
import pytest

from tests.graphs.test_metric_learning import tiny_events, trained  # noqa: F401  (module fixture)
from gnntrack.errors import InputError
from gnntrack.graphs.build import build_event, find_graph_edges, prepare, select_nodes
from gnntrack.graphs.filter import PHI_SLOPE_CLIP, edge_inputs, edge_scores, load_filter, save_filter
from gnntrack.graphs.fit import fit_filter
from gnntrack.graphs.metric_learning import hit_inputs
from gnntrack.graphs.report import merge_stats, summarize


@pytest.fixture(scope="module")
def filtered(trained, tmp_path_factory):  # noqa: F811
    """(config with a trained filter on the metric graph, held-out event)."""
    config, event = trained
    config = config.copy_and_resolve_references()
    f = config.filter
    f.hidden, f.n_layers, f.steps, f.batch_edges, f.learning_rate = 32, 2, 300, 256, 5e-3
    # the config names the filter file before it exists: training must not try to read it
    config.filter.path = str(tmp_path_factory.mktemp("filter") / "filter.npz")
    params = fit_filter(tiny_events([1, 2, 3]), config, progress=False)
    save_filter(config.filter.path, params, config)
    return config, event


def test_edge_inputs_columns():
    event = tiny_events([5])[0]
    config, layers, pairs = prepare()
    nodes = select_nodes(event, config, layers)
    s, r = find_graph_edges(nodes, pairs, config)
    x = edge_inputs(nodes, s, r)
    f = hit_inputs(nodes).shape[1]
    assert x.shape == (len(s), 2 * f + 5) and x.dtype == np.float32
    np.testing.assert_array_equal(x[:, :f], hit_inputs(nodes)[s])  # a gather: bitwise
    np.testing.assert_array_equal(x[:, f:2 * f], hit_inputs(nodes)[r])
    assert np.abs(x[:, -1]).max() <= 1.0  # clipped dphi/dr, scaled by PHI_SLOPE_CLIP
    assert PHI_SLOPE_CLIP > 0


def test_filter_prunes_and_reports(filtered):
    config, event = filtered
    cfg, layers, pairs = prepare(config)
    graphs, stats = build_event(event, cfg, layers, pairs)
    summary = summarize(merge_stats([stats]))
    f = summary["filter"]
    assert f["reduction"] > 1.2 and f["kept_efficiency"] >= 0.9, f
    assert summary["efficiency"] == pytest.approx(f["efficiency_before"] * f["kept_efficiency"])
    assert summary["mean_edges"] * f["reduction"] == pytest.approx(f["edges_before"])
    assert set(f["by_pt_min"]) == set(summary["by_pt_min"])
    # the kept edges are the edges scoring >= threshold, a subset of the unfiltered graph
    nodes = select_nodes(event, cfg, layers)
    s, r = find_graph_edges(nodes, pairs, cfg)
    keep = edge_scores(load_filter(cfg.filter.path)[0], nodes, s, r) >= cfg.filter.threshold
    np.testing.assert_array_equal(graphs[0].graph.senders, s[keep])
    np.testing.assert_array_equal(graphs[0].graph.receivers, r[keep])
    # threshold 0 keeps every edge
    cfg.filter.threshold = 0.0
    _, stats0 = build_event(event, cfg, layers, pairs)
    assert summarize(merge_stats([stats0]))["filter"]["reduction"] == 1.0


def test_filter_file_errors(filtered, tmp_path):
    config, _ = filtered
    config = config.copy_and_resolve_references()
    config.filter.path = str(tmp_path / "nofilter.npz")
    with pytest.raises(InputError, match="nofilter.npz"):
        prepare(config)
    config.filter.path = config.metric.embedding  # an embedding is not a filter
    with pytest.raises(InputError, match="not a 'filter'"):
        prepare(config)


def test_cli_build_graphs_reports_the_filter(filtered, tmp_path, capsys):
    from gnntrack.cli import main
    from gnntrack.io.trackml import write_event

    config, event = filtered
    write_event(event, tmp_path / "events")
    rc = main(["build-graphs", "--input", str(tmp_path / "events"), "--out", str(tmp_path / "g"), "--no-progress",
               "--config", "experiments/graphs/metric_all.py:filter",
               f"--config.metric.embedding={config.metric.embedding}", f"--config.filter.path={config.filter.path}"])
    out = capsys.readouterr().out
    assert rc == 0 and '"reduction"' in out and '"kept_efficiency"' in out
