"""Graph store round trip, directory builder + summary.json, CLI, bad files."""

import json

import numpy as np
import pytest

from tests.graphs.graph_events import random_event
from gnntrack.errors import InputError
from gnntrack.graphs.build import build_graph
from gnntrack.graphs.config import default_graph_config
from gnntrack.graphs.layer_map import trackml_layer_table
from gnntrack.graphs.store import build_graph_dir, load_graph, load_graph_dir, save_graph

LAYERS = trackml_layer_table()


def _assert_same(a, b):
    for field in ("nodes", "edges", "senders", "receivers", "n_node", "n_edge"):
        x, y = getattr(a.graph, field), getattr(b.graph, field)
        assert x.dtype == y.dtype and np.array_equal(x, y), field
    for field in ("y", "hit_id", "particle_id", "layer", "edge_pt"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field
    assert (a.event_id, a.section) == (b.event_id, b.section)


@pytest.mark.parametrize("compress", [False, True])
def test_save_load_round_trip(tmp_path, compress):
    g = build_graph(random_event(60, n_noise=20, seed=1), default_graph_config(), detector=LAYERS)
    path = save_graph(g, tmp_path / "event000000001.npz", compress=compress)
    assert path.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    h = load_graph(path)
    _assert_same(g, h)
    assert h.graph.globals is None and h.n_edges == g.n_edges > 0


def test_bad_graph_files(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_graph(tmp_path / "missing.npz")
    (tmp_path / "event1.npz").write_bytes(b"garbage")
    with pytest.raises(InputError, match="event1.npz"):
        load_graph(tmp_path / "event1.npz")
    np.savez(tmp_path / "event2.npz", nodes=np.zeros((1, 3)))
    with pytest.raises(InputError, match="lacks"):
        load_graph(tmp_path / "event2.npz")
    with pytest.raises(InputError, match="not found"):
        load_graph_dir(tmp_path / "nothing_here")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no graph files"):
        load_graph_dir(empty)


def _write_events(directory, n=3):
    from gnntrack.io.trackml import write_event

    events = []
    for i in range(n):
        ev = random_event(120, n_noise=60, seed=20 + i, duplicate_every=6)
        ev.event_id = 1000 + i
        write_event(ev, directory)
        events.append(ev)
    return events


def test_build_graph_dir_and_summary(tmp_path):
    events = _write_events(tmp_path / "events")
    config = default_graph_config()
    config.pt_min = 0.8
    config.remove_noise = True
    summary = build_graph_dir(tmp_path / "events", tmp_path / "graphs", config, workers=1, progress=False)
    on_disk = json.loads((tmp_path / "graphs" / "summary.json").read_text())
    for key in ("events", "mean_nodes", "mean_edges", "efficiency", "purity", "seconds_per_event",
                "by_pt_min", "by_pt_bin", "layer_pairs", "config"):
        assert key in on_disk, key
    assert on_disk["events"] == 3 and summary["efficiency"] == pytest.approx(1.0)
    assert 0 < on_disk["purity"] < 1 and on_disk["by_pt_min"]["1"]["efficiency"] == pytest.approx(1.0)
    graphs = load_graph_dir(tmp_path / "graphs")
    assert [g.event_id for g in graphs] == [1000, 1001, 1002]
    assert np.mean([g.n_edges for g in graphs]) == pytest.approx(on_disk["mean_edges"])
    # The graph from disk equals the one built in memory from the same event.
    _assert_same(graphs[0], build_graph(events[0], config, detector=LAYERS))


def test_cli_build_graphs_with_learned_layer_map(tmp_path, capsys):
    from gnntrack.cli import main

    _write_events(tmp_path / "events", n=2)
    rc = main(["build-graphs", "--input", str(tmp_path / "events"), "--out", str(tmp_path / "g"),
               "--config", "experiments/graphs/pixel_pt1.py", "--learn-layer-map", "2", "--no-progress",
               "--config.z0_max=150"])
    assert rc == 0
    summary = json.loads((tmp_path / "g" / "summary.json").read_text())
    assert summary["config"]["z0_max"] == 150.0 and summary["layer_pairs_source"].endswith("layer_map.json")
    assert (tmp_path / "g" / "layer_map.json").exists() and summary["efficiency"] == pytest.approx(1.0)
    # reuse the learned map
    rc = main(["build-graphs", "--input", str(tmp_path / "events"), "--out", str(tmp_path / "g2"),
               "--layer-map", str(tmp_path / "g" / "layer_map.json"), "--no-progress", "--limit", "1"])
    assert rc == 0 and json.loads((tmp_path / "g2" / "summary.json").read_text())["events"] == 1
    # bad input: one clear line, exit code 2
    rc = main(["build-graphs", "--input", str(tmp_path / "nope"), "--out", str(tmp_path / "g3"), "--no-progress"])
    assert rc == 2 and "nope" in capsys.readouterr().err
    rc = main(["build-graphs", "--input", str(tmp_path / "events"), "--out", str(tmp_path / "g3"),
               "--no-progress", "--config.selection=pixels"])
    assert rc == 2 and "selection" in capsys.readouterr().err


def test_experiment_configs_load():
    from pathlib import Path

    from gnntrack.config import load_config
    from gnntrack.graphs.config import validate_graph_config

    files = sorted(Path("experiments/graphs").glob("*.py"))
    assert {f.stem for f in files} >= {"barrel_pt1", "barrel_pt0p5", "barrel_nocut", "pixel_pt2", "pixel_pt1p5",
                                       "pixel_pt1", "pixel_pt0p7", "pixel_pt0p5"}
    for f in files:
        validate_graph_config(load_config(f))
    assert load_config("experiments/graphs/pixel_pt0p5.py").pt_min == 0.5


def test_parallel_workers_give_identical_files(tmp_path):
    _write_events(tmp_path / "events", n=2)
    config = default_graph_config()
    s1 = build_graph_dir(tmp_path / "events", tmp_path / "w1", config, workers=1, progress=False)
    s2 = build_graph_dir(tmp_path / "events", tmp_path / "w2", config, workers=2, progress=False)
    for key in ("events", "graphs", "mean_nodes", "mean_edges", "efficiency", "purity", "by_pt_min", "by_pt_bin"):
        assert s1[key] == s2[key], key
    # bitwise: each event runs the same numpy code on one machine, and results come back in order
    for a, b in zip(load_graph_dir(tmp_path / "w1"), load_graph_dir(tmp_path / "w2")):
        _assert_same(a, b)
