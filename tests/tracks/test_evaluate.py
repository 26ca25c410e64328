"""`gnntrack evaluate` and `gnntrack score` end to end on a tiny run (untrained model, 2 small
simulated events): report files, metrics.json keys, consistency between the pieces."""

import json

import numpy as np
import pandas as pd
import pytest

from gnntrack.cli import main
from gnntrack.errors import InputError
from tests.tracks.tiny_run import save_untrained_run
from tests.io.test_lock import holder  # noqa: F401 - a fixture: a process holding a directory's lock

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from gnntrack.detector.simulate import default_simulation_config, simulate_events
    from gnntrack.train.defaults import default_config

    root = tmp_path_factory.mktemp("evaluate")
    events = root / "events"
    sim = default_simulation_config()
    sim.pileup = 3
    simulate_events(events, 2, sim, seed=3)
    run = root / "run"
    save_untrained_run(default_config(), run, {10: 0.5, 20: 0.4})
    (run / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "loss": 1 / (1 + s)}) + "\n"
                                               for s in range(0, 21, 2)))
    return run, events


def test_evaluate_end_to_end(tiny, tmp_path, capsys):
    run, events = tiny
    out = tmp_path / "report"
    assert main(["evaluate", "--workdir", str(run), "--input", str(events), "--out", str(out),
                 "--n-boot", "50", "--no-progress"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("accuracy", "precision", "recall", "f1", "auc"):
        assert 0.0 <= metrics["edge"][key] <= 1.0
        lo, hi = metrics["edge"]["intervals"][key]
        assert lo <= hi
    for key in ("trackml_score", "efficiency", "fake_rate", "duplicate_rate"):
        assert 0.0 <= metrics["tracks"][key] <= 1.0
        assert key in metrics["tracks"]["intervals"]
    assert metrics["run"]["checkpoint"] == "best" and metrics["run"]["step"] == 10
    assert metrics["n_events"] == 2
    for name in ("roc", "score_histogram", "efficiency_pt", "efficiency_eta", "threshold_scan",
                 "training_curves", "event_display"):
        png = out / metrics["files"][name]
        assert png.read_bytes()[:4] == b"\x89PNG", name
    table = pd.read_csv(out / "events.csv")
    assert len(table) == 2 and {"event_id", "trackml_score", "double_majority.efficiency"} <= set(table.columns)
    # pooled edge metrics agree with the per-event confusion counts
    assert metrics["edge"]["recall"] == pytest.approx(table.tp.sum() / table.n_true_edges.sum())
    assert metrics["tracks"]["trackml_score"] == pytest.approx(table.trackml_score.mean())
    # no track building on these graphs can beat perfect tracks on the graph hits
    assert (table.trackml_score <= table.trackml_score_ceiling + 1e-12).all()
    assert 0.0 < metrics["tracks"]["trackml_score_ceiling"] <= 1.0
    assert "trackml_score_ceiling" in capsys.readouterr().out

    # events in chunks of one give the same numbers (one ladder reused across chunks)
    from gnntrack.tracks.evaluate import default_evaluation_config, evaluate_run

    cfg = default_evaluation_config()
    cfg.update(chunk_events=1, n_boot=50, plots=False, write_submissions=False, progress=False)
    chunked = evaluate_run(run, events, tmp_path / "chunked", config=cfg)
    for group in ("edge", "tracks"):
        for key in ("accuracy", "auc") if group == "edge" else ("trackml_score", "efficiency", "fake_rate"):
            assert chunked[group][key] == pytest.approx(metrics[group][key], abs=1e-6)

    # event_ids picks events; an id not in the directory is named
    cfg.event_ids = (int(table.event_id[1]),)
    one = evaluate_run(run, events, tmp_path / "one", config=cfg)
    assert one["input"]["event_ids"] == [int(table.event_id[1])]
    cfg.event_ids = (424242,)
    with pytest.raises(InputError, match=r"events \[424242\] not found"):
        evaluate_run(run, events, tmp_path / "none", config=cfg)

    # the written submission scores the same through `gnntrack score`
    event_id = int(table.event_id[0])
    prefix = events / f"event{event_id:09d}"
    sub = out / "submissions" / f"event{event_id:09d}-submission.csv"
    assert main(["score", str(prefix), str(sub), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["score"] == pytest.approx(table.trackml_score[0], abs=1e-12)

    # malformed submission: one clear error, exit code 2
    bad = tmp_path / "bad.csv"
    pd.read_csv(sub).iloc[:-3].to_csv(bad, index=False)
    assert main(["score", str(prefix), str(bad)]) == 2
    assert "missing" in capsys.readouterr().err


def _run_with_checkpoint(run, workdir, transform):
    """A copy of `run`'s config with one checkpoint (step 30) whose parameters are transform(p)."""
    import jax
    import optax

    from gnntrack.config import load_config
    from gnntrack.graphs.batching import synthetic_hit_graph
    from gnntrack.nn.models import build_model
    from gnntrack.train.checkpoint import Checkpointer
    from gnntrack.train.state import init_train_state

    workdir.mkdir()
    (workdir / "config.json").write_text((run / "config.json").read_text())
    model = build_model(load_config(workdir / "config.json").model)
    state = init_train_state(model, optax.adam(1e-3), synthetic_hit_graph(np.random.default_rng(0), 10, 20).graph)
    state = state.replace(params=jax.tree_util.tree_map(transform, state.params))
    with Checkpointer(workdir / "checkpoints") as ckpt:
        ckpt.save(30, state, {})
    return workdir


def test_evaluate_refuses_a_checkpoint_whose_edge_scores_are_not_finite(tiny, tmp_path, capsys):
    # a checkpoint of a diverged run used to give AUC nan with an interval [0.5, 0.5] and exit 0
    run, events = tiny
    bad = _run_with_checkpoint(run, tmp_path / "diverged", lambda p: np.full(np.shape(p), np.nan, np.float32))
    out = tmp_path / "report"
    assert main(["evaluate", "--workdir", str(bad), "--input", str(events), "--out", str(out),
                 "--n-boot", "20", "--no-progress", "--no-plots"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "step 30" in err and "non-finite edge scores" in err and "--checkpoint" in err
    n_edges = int(err.split("non-finite edge scores on ")[1].split(" of ")[1].split()[0])
    assert f"on {n_edges} of {n_edges} edges" in err  # every edge: all parameters are NaN
    assert not (out / "metrics.json").exists()


def test_undefined_metric_is_printed_as_undefined_with_a_warning(capsys):
    # events without a single true edge: edge AUC (and recall) are undefined, not a number
    from rich.console import Console

    from gnntrack.commands.evaluate import print_metrics
    from gnntrack.tracks.evaluate import default_evaluation_config, edge_counts, metric_warnings, summarize
    from gnntrack.tracks.matching import COUNT_KEYS, SCHEMES

    cfg = default_evaluation_config()
    rng = np.random.default_rng(0)
    rows, scores = [], []
    for event_id in (1, 2, 3):
        s = rng.random(50)
        scores.append(s)
        row = {"event_id": event_id, "trackml_score": 0.5, "trackml_score_graph_hits": 0.5,
               "trackml_score_ceiling": 1.0, **edge_counts(s, np.zeros(50, bool), cfg.threshold)}
        row.update({f"{scheme}.{k}": 1 for scheme in SCHEMES for k in COUNT_KEYS})
        rows.append(row)
    metrics = summarize(rows, np.concatenate(scores), np.zeros(150, bool), cfg)
    assert np.isnan(metrics["edge"]["auc"]) and "auc" not in metrics["edge"]["intervals"]
    metrics["warnings"] = metric_warnings(metrics, rows, cfg)
    assert any("edge auc is undefined" in w for w in metrics["warnings"])
    metrics.update(run={"checkpoint": "best", "step": 10})
    console = Console(width=200, record=True)
    print_metrics(metrics, "report", console=console)
    text = console.export_text()
    auc_line = next(line for line in text.splitlines() if "edge auc" in line)
    assert "undefined" in auc_line and "nan" not in auc_line and "0.5000" not in auc_line
    assert "warning: edge auc is undefined" in text


def test_events_without_graph_edges_are_named_in_the_output_and_metrics(tiny, tmp_path, capsys):
    # an event whose graph has no edge used to be averaged into the metrics without a word
    from gnntrack.io.event import Event
    from gnntrack.io.trackml import read_event, write_event

    run, events = tiny
    mixed = tmp_path / "events"
    first = sorted(events.glob("event*-hits.csv*"))[0]
    event = read_event(str(first).split("-hits")[0])
    for e in (event, Event(event_id=999, hits=event.hits.iloc[:1], truth=event.truth.iloc[:1],
                           particles=event.particles)):
        write_event(e, mixed)  # the second one: a single hit, so no edge
    out = tmp_path / "report"
    assert main(["evaluate", "--workdir", str(run), "--input", str(mixed), "--out", str(out),
                 "--n-boot", "20", "--no-progress", "--no-plots", "--no-submissions"]) == 0
    text = capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_events"] == 2 and metrics["n_empty_events"] == 1 and metrics["empty_events"] == [999]
    assert any("event 999" in w for w in metrics["warnings"])
    assert "warning:" in text and "999" in text


def test_load_run_errors_and_checkpoint_choice(tiny, tmp_path):
    from gnntrack.tracks.evaluate import load_run

    run, _ = tiny
    assert load_run(run, "latest").step == 20
    assert load_run(run, 10).which == "step"
    with pytest.raises(InputError, match="no checkpoint at step 15"):
        load_run(run, 15)
    with pytest.raises(InputError, match="not a run directory"):
        load_run(tmp_path)
    assert main(["evaluate", "--workdir", str(run), "--input", str(tmp_path / "nowhere")]) == 2


def _copy_run(tiny, tmp_path):
    import shutil

    run, events = tiny
    shutil.copytree(run, tmp_path / "run")
    return tmp_path / "run", events


def test_load_run_skips_damaged_checkpoints(tiny, tmp_path, capsys):
    from gnntrack.errors import GnnTrackError
    from gnntrack.tracks.evaluate import load_run
    from tests.train.checkpoint_damage import damage

    run, _ = _copy_run(tiny, tmp_path)  # checkpoints 10 (the best) and 20
    damage(run / "checkpoints" / "20", "truncated_manifest")
    assert load_run(run, "latest").step == 10
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "skipped damaged checkpoint 20" in err[0] and "using step 10" in err[0]
    with pytest.raises(GnnTrackError, match="checkpoint 20 in .* cannot be read") as info:
        load_run(run, 20)  # asked for by number: no silent substitute
    assert "\n" not in str(info.value)
    damage(run / "checkpoints" / "10", "random_data")
    with pytest.raises(GnnTrackError, match="no checkpoint in .* can be read"):
        load_run(run, "best")
    assert not (run / "checkpoints.damaged").exists()  # evaluation only reads


def test_load_run_falls_back_from_a_damaged_best(tiny, tmp_path, capsys):
    from gnntrack.tracks.evaluate import load_run
    from tests.train.checkpoint_damage import damage

    run, _ = _copy_run(tiny, tmp_path)
    damage(run / "checkpoints" / "10", "missing_state")
    loaded = load_run(run, "best")
    assert (loaded.step, loaded.which) == (20, "latest")
    assert "skipped damaged checkpoint 10" in capsys.readouterr().err


def test_evaluate_without_a_checkpoint_is_one_line(tiny, tmp_path):
    """Used to print the clear message and then an orbax traceback at interpreter exit (a clean-up
    thread of the checkpoint manager): run as the user does, in its own process."""
    import subprocess
    import sys

    run, events = _copy_run(tiny, tmp_path)
    for step in ("10", "20"):
        __import__("shutil").rmtree(run / "checkpoints" / step)
    proc = subprocess.run([sys.executable, "-m", "gnntrack", "evaluate", "--workdir", str(run), "--input",
                           str(events), "--no-progress"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"gnntrack evaluate: error: {run}: no checkpoint to evaluate in {run / 'checkpoints'}; "
        f"train the run first (gnntrack train --workdir {run})"]


def test_evaluate_only_reads_while_training_runs(tiny, tmp_path, holder):
    from gnntrack.tracks.evaluate import load_run

    run, _ = _copy_run(tiny, tmp_path)
    holder(run)  # another process holds the run (as `gnntrack train` does): evaluation needs no lock
    saving = run / "checkpoints" / "30.orbax-checkpoint-tmp-1700000000"  # the trainer's save in progress
    (saving / "state").mkdir(parents=True)
    (saving / "state" / "manifest.ocdbt").write_bytes(b"half written")
    assert load_run(run, "latest").step == 20
    assert (saving / "state" / "manifest.ocdbt").read_bytes() == b"half written"


def test_an_edited_config_json_that_no_longer_fits_the_checkpoint(tiny, tmp_path, capsys):
    # used to end in flax's ScopeParamShapeError when the model was first applied
    run, events = _copy_run(tiny, tmp_path)
    config = json.loads((run / "config.json").read_text())
    config["model"]["hidden"] = 16
    (run / "config.json").write_text(json.dumps(config))
    assert main(["evaluate", "--workdir", str(run), "--input", str(events), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert str(run / "config.json") in err and "in the checkpoint but" in err and "16" in err


def test_graph_overrides_for_evaluation(tmp_path):
    from gnntrack.errors import ConfigError
    from gnntrack.tracks.evaluate import _graph_inputs
    from gnntrack.train.defaults import default_config

    cfg = default_config()
    cfg.graph.pt_min = 1.0
    graph_config, _, pairs = _graph_inputs(cfg, tmp_path, ["pt_min=0", "selection=barrel"])
    assert graph_config.pt_min == 0.0 and graph_config.selection == "barrel" and len(pairs)
    assert cfg.graph.pt_min == 1.0  # the run's config is not modified
    with pytest.raises(ConfigError, match="pt_minn"):
        _graph_inputs(cfg, tmp_path, ["pt_minn=0"])


def test_score_ceiling_is_one_when_the_graph_holds_every_hit():
    from gnntrack.tracks.evaluate import graph_score_ceiling

    truth = pd.DataFrame({"hit_id": np.arange(1, 9), "particle_id": [5, 5, 5, 5, 7, 7, 7, 0],
                          "weight": [0.125] * 4 + [0.5 / 3] * 3 + [0.0]})
    hits = truth.hit_id.to_numpy()
    assert graph_score_ceiling(truth, hits, hits, truth.particle_id.to_numpy()) == pytest.approx(1.0)
    # a graph without particle 7's hits (say, below a pT cut) can reach only particle 5's weight
    assert graph_score_ceiling(truth, hits, hits[:4], np.full(4, 5)) == pytest.approx(0.5)


def test_edge_metrics_at_several_cuts_and_efficiency_vs_energy(tiny, tmp_path):
    """edge_thresholds give accuracy / precision / recall / F1 with intervals (at `level`) per cut,
    equal to the pooled counts; energy_bins add an efficiency table and plot vs |p|."""
    from gnntrack.tracks.evaluate import default_evaluation_config, evaluate_run

    run, events = tiny
    cfg = default_evaluation_config()
    cfg.update(n_boot=50, level=0.68, edge_thresholds=(0.3, 0.5, 0.7), energy_bins=(0.0, 1.0, 3.0, 100.0),
               write_submissions=False, progress=False)
    cfg.matching.min_hits = 4
    out = tmp_path / "report"
    metrics = evaluate_run(run, events, out, config=cfg)
    assert metrics["bootstrap"]["level"] == 0.68
    at = metrics["edge"]["at_thresholds"]
    assert set(at) == {"0.3", "0.5", "0.7"}
    table = pd.read_csv(out / "events.csv")
    for t, m in at.items():
        assert m["recall"] == pytest.approx(table[f"tp@{t}"].sum() / table.n_true_edges.sum())
        assert m["precision"] == pytest.approx(table[f"tp@{t}"].sum() / table[f"edge_predicted@{t}"].sum())
        lo, hi = m["intervals"]["f1"]
        assert lo <= hi
    for key in ("accuracy", "precision", "recall", "f1"):  # the 0.5 cut is the headline cut
        assert at["0.5"][key] == pytest.approx(metrics["edge"][key])
    energy = pd.read_csv(out / "efficiency_energy.csv")
    assert list(energy.lo.unique()) == [0.0, 1.0, 3.0]
    assert set(energy.matching) >= {"double_majority"}
    assert (out / metrics["files"]["efficiency_energy"]).read_bytes()[:4] == b"\x89PNG"
