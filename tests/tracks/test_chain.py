"""`gnntrack reconstruct`: metric-learning graphs + filter -> GNN -> tracks -> one TrackML
submission and the whole-event numbers, on tiny simulated events with cells (the stages read the
cluster shapes, as experiments/whole_event does; an untrained GNN: this tests the chain, not the
physics) and on the same events in the real TrackML file layout."""

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gnntrack.cli import main
from gnntrack.io.trackml import list_event_prefixes, read_event
from tests.graphs.test_metric_learning import tiny_config
from tests.tracks.tiny_run import save_untrained_run

pytestmark = pytest.mark.slow

# the columns of the public TrackML files (no particle_type in the real particles table)
REAL_COLUMNS = {"hits": ["hit_id", "x", "y", "z", "volume_id", "layer_id", "module_id"],
                "truth": ["hit_id", "particle_id", "tx", "ty", "tz", "tpx", "tpy", "tpz", "weight"],
                "particles": ["particle_id", "vx", "vy", "vz", "px", "py", "pz", "q", "nhits"],
                "cells": ["hit_id", "ch0", "ch1", "value"]}


@pytest.fixture(scope="module")
def chain_run(tmp_path_factory):
    """(run directory holding embedding.npz and filter.npz that its config names by relative
    path, directory of 2 simulated events)."""
    from gnntrack.detector.simulate import default_simulation_config, simulate_events
    from gnntrack.graphs.filter import save_filter
    from gnntrack.graphs.fit import fit_embedding, fit_filter
    from gnntrack.graphs.metric_learning import save_embedding
    from gnntrack.io.trackml import read_events
    from gnntrack.train.defaults import default_config

    root = tmp_path_factory.mktemp("chain")
    events_dir = root / "events"
    sim = default_simulation_config()
    sim.pileup, sim.cells = 2, True
    simulate_events(events_dir, 2, sim, seed=5)
    events = list(read_events(events_dir, ("hits", "truth", "particles", "cells")))
    run = root / "run"
    graph = tiny_config()
    graph.selection = "all"
    graph.features.node = ("r", "phi", "z", "cell_count", "cell_value", "cell_angle_u", "cell_angle_v")
    graph.filter.update(hidden=16, n_layers=2, steps=100, batch_edges=256, threshold=0.2)
    save_embedding(run / "embedding.npz", fit_embedding(events, graph, progress=False), graph)
    graph.method = "metric"
    graph.metric.embedding = str(run / "embedding.npz")
    save_filter(run / "filter.npz", fit_filter(events, graph, progress=False), graph)
    graph.metric.embedding, graph.filter.path = "embedding.npz", "filter.npz"  # found in the run
    cfg = default_config()
    cfg.graph = graph
    save_untrained_run(cfg, run, {10: 0.5})
    return run, events_dir


def _reconstruct(run, events, out, capsys, *extra):
    assert main(["reconstruct", "--run", str(run), "--input", str(events), "--out", str(out),
                 "--no-progress", "--no-plots", "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def _check_submission(out, events):
    sub = pd.read_csv(out / "submission.csv")
    assert list(sub.columns) == ["event_id", "hit_id", "track_id"]
    for prefix in list_event_prefixes(events):
        event = read_event(prefix, ("hits",))
        rows = sub[sub.event_id == event.event_id]
        # every hit of the event exactly once (the TrackML submission rule)
        assert sorted(rows.hit_id) == sorted(event.hits.hit_id)
    return sub


def test_reconstruct_writes_one_submission_and_the_whole_event_numbers(chain_run, tmp_path, capsys):
    run, events = chain_run
    out = tmp_path / "out"
    result = _reconstruct(run, events, out, capsys)
    for key in ("trackml_score", "trackml_score_ceiling", "efficiency_pt1", "efficiency_pt0p5", "fake_rate"):
        assert 0.0 <= result[key] <= 1.0, key
    assert result["trackml_score"] <= result["trackml_score_ceiling"] + 1e-12
    assert result["n_events"] == 2 and result["graph"]["method"] == "metric" and result["graph"]["filter"]
    assert json.loads((out / "whole_event.json").read_text()) == result
    sub = _check_submission(out, events)
    # the score printed is the mean over events of the score of that submission
    from gnntrack.tracks.score import trackml_score

    scores = [trackml_score(read_event(p, ("hits", "truth")).truth,
                            sub[sub.event_id == read_event(p, ("hits",)).event_id], validate=False)
              for p in list_event_prefixes(events)]
    assert result["trackml_score"] == pytest.approx(np.mean(scores), abs=1e-9)


def test_reconstruct_reads_the_real_trackml_layout_unchanged(chain_run, tmp_path, capsys):
    """The same events rewritten as the public TrackML files (gzipped, their columns only) give
    the same numbers."""
    run, events = chain_run
    real = tmp_path / "real"
    real.mkdir()
    for prefix in list_event_prefixes(events):
        for part, columns in REAL_COLUMNS.items():
            table = pd.read_csv(f"{prefix}-{part}.csv")[columns]
            with gzip.open(real / f"{prefix.name}-{part}.csv.gz", "wt") as f:
                table.to_csv(f, index=False)
    simulated = _reconstruct(run, events, tmp_path / "a", capsys)
    from_real = _reconstruct(run, real, tmp_path / "b", capsys)
    _check_submission(tmp_path / "b", real)
    for key in ("trackml_score", "efficiency_pt1", "efficiency_pt0p5", "fake_rate"):
        # same hits, same model, one machine: the same tracks
        assert from_real[key] == pytest.approx(simulated[key], abs=1e-6), key


def test_reconstruct_graph_overrides_change_the_run_graph_and_are_recorded(chain_run, tmp_path, capsys):
    run, events = chain_run
    base = _reconstruct(run, events, tmp_path / "base", capsys)
    fewer = _reconstruct(run, events, tmp_path / "k1", capsys, "--graph", "metric.k_max=1")
    assert base["graph"]["overrides"] == [] and fewer["graph"]["overrides"] == ["metric.k_max=1"]
    assert 0 < fewer["edges_per_event"] < base["edges_per_event"]  # one nearest neighbour per hit at most


def test_best_cut_takes_the_highest_score_and_the_higher_cut_on_a_tie():
    from gnntrack.errors import InputError
    from gnntrack.tracks.chain import best_cut

    scan = pd.DataFrame({"threshold": [0.1, 0.2, 0.3, 0.4], "trackml_score_graph_hits": [0.2, 0.5, 0.5, np.nan]})
    assert best_cut(scan) == 0.3
    with pytest.raises(InputError, match="tuning events"):
        best_cut(scan.assign(trackml_score_graph_hits=np.nan))


def test_reconstruct_tunes_the_cut_on_other_events(chain_run, tmp_path, capsys):
    """--tune-on: the cut is the best of the scan on the tuning events (never on the evaluated
    ones), and the evaluated events then give what --threshold with that cut gives."""
    from gnntrack.detector.simulate import default_simulation_config, simulate_events
    from gnntrack.tracks.chain import best_cut, default_chain_config

    run, events = chain_run
    tune = tmp_path / "tune"
    sim = default_simulation_config()
    sim.pileup, sim.cells = 2, True
    simulate_events(tune, 1, sim, seed=6)
    result = _reconstruct(run, events, tmp_path / "out", capsys, "--tune-on", str(tune))
    tuned = result["tracks"]["tuned_on"]
    scan = pd.read_csv(tmp_path / "out" / "tuning" / "threshold_scan_tracks.csv")
    assert list(scan["threshold"]) == pytest.approx(default_chain_config().track_thresholds)
    assert tuned["cut"] == best_cut(scan) == result["tracks"]["cut"]
    assert tuned["scan"][f"{tuned['cut']:g}"] == pytest.approx(scan["trackml_score_graph_hits"].max())
    assert tuned["n_events"] == 1
    fixed = _reconstruct(run, events, tmp_path / "fixed", capsys, "--threshold", f"{tuned['cut']!r}")
    for key in ("trackml_score", "efficiency_pt1", "fake_rate"):
        # the same cut on the same events in one process: the same tracks
        assert result[key] == pytest.approx(fixed[key], abs=1e-12), key


def test_reconstruct_errors_are_one_line(chain_run, tmp_path, capsys):
    run, events = chain_run
    assert main(["reconstruct", "--run", str(tmp_path), "--input", str(events), "--out", str(tmp_path / "o")]) == 2
    assert "not a run directory" in capsys.readouterr().err
    assert main(["reconstruct", "--run", str(run), "--input", str(tmp_path / "none"),
                 "--out", str(tmp_path / "o")]) == 2
    assert "--input" in capsys.readouterr().err
    bare = tmp_path / "bare"   # events without their cells files: the run's stages need them
    bare.mkdir()
    for prefix in list_event_prefixes(events):
        for part in ("hits", "truth", "particles"):
            (bare / f"{prefix.name}-{part}.csv").write_bytes(Path(f"{prefix}-{part}.csv").read_bytes())
    assert main(["reconstruct", "--run", str(run), "--input", str(bare), "--out", str(tmp_path / "o")]) == 2
    assert "cells" in capsys.readouterr().err
    assert main(["reconstruct", "--run", str(run), "--input", str(events), "--out", str(tmp_path / "o"),
                 "--tune-on", str(events)]) == 2
    assert "other events" in capsys.readouterr().err
    assert main(["reconstruct", "--run", str(run), "--input", str(events), "--out", str(tmp_path / "o"),
                 "--tune-on", str(events), "--threshold", "0.3"]) == 2
    assert "give one" in capsys.readouterr().err
    file = tmp_path / "results.txt"
    file.write_text("not a directory\n")
    assert main(["reconstruct", "--run", str(run), "--input", str(events), "--out", str(file)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gnntrack reconstruct: error: ") and "not a directory" in err and "\n" not in err


def _table_script():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "whole_event_table", Path(__file__).resolve().parents[2] / "scripts" / "whole_event_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_whole_event_table_script(chain_run, tmp_path, capsys):
    """scripts/whole_event_table.py: `table` shows the graph rows and a reconstruct directory's
    numbers; `stages` trains both learned stages (tiny sizes)."""
    run, events = chain_run
    result = _reconstruct(run, events, tmp_path / "rec", capsys)
    graphs = tmp_path / "graphs.json"
    graphs.write_text(json.dumps({"source": "2 tiny events", "rows": [
        {"name": "geometric", "efficiency_pt1": 0.99, "purity_pt1": 0.1, "efficiency": 0.6, "purity": 0.01,
         "mean_edges": 1000.0, "cpu_seconds_per_event": 0.5}]}))
    script = _table_script()
    assert script.main(["table", "--graphs", str(graphs), "--reconstruct", f"tiny={tmp_path / 'rec'}",
                        "--reconstruct", str(tmp_path / "rec"), "--out", str(tmp_path / "table.json")]) == 0
    printed = capsys.readouterr().out
    assert "| geometric | 0.9900 |" in printed and f"| tiny | {result['trackml_score']:.4f} |" in printed
    assert "| metric + filter -> GNN -> tracks (walkthrough, cut 0.5) |" in printed  # unnamed: what ran
    saved = json.loads((tmp_path / "table.json").read_text())
    assert saved["end_to_end"][0]["efficiency_pt0p5"] == result["efficiency_pt0p5"]

    assert script.main(["stages", "--out", str(tmp_path / "stages"), "--events", "1", "--pileup", "2",
                        "metric.steps=20", "metric.hidden=16", "metric.k_max=8", "filter.steps=20",
                        "filter.hidden=16"]) == 0
    from gnntrack.graphs.filter import load_filter
    from gnntrack.graphs.metric_learning import load_embedding

    assert load_embedding(tmp_path / "stages" / "embedding.npz")[1]["kind"] == "embedding"
    assert load_filter(tmp_path / "stages" / "filter.npz")[1]["kind"] == "filter"
