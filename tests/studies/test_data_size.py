"""Data-size study: a tiny study (2 sizes, 2 seeds, a few steps) runs end to end into results.csv,
results.md and data_size.png with the train/validation gap, `gnntrack scale` dispatches on
study.kind = 'data_size', and a resumed study reruns only the point whose point.json is gone."""

import json

import numpy as np
import pytest

from gnntrack.cli import main as cli_main
from gnntrack.config import load_config
from gnntrack.errors import ConfigError
from gnntrack.graphs.batching import synthetic_hit_graph
from gnntrack.studies import data_size as D
from gnntrack.studies import fast_trainer as FT
from gnntrack.studies.provenance import read_results_csv

EXPERIMENT = "experiments/scaling/data_size.py"
TINY = ["study.train_sizes=(4, 8)", "study.seeds=(1, 2)", "study.steps=30", "study.eval_every=10",
        "study.patience=2", "study.toy.n_events=20", "data.n_val=6", "model.hidden=8"]


def test_first_events_keeps_whole_events_in_id_order():
    rng = np.random.default_rng(0)
    graphs = [synthetic_hit_graph(rng, 5, 8, event_id=e) for e in (7, 3, 3, 9)]
    assert [g.event_id for g in FT.first_events(graphs, 1)] == [3, 3]       # both sections of event 3
    assert sorted(g.event_id for g in FT.first_events(graphs, 2)) == [3, 3, 7]
    with pytest.raises(ConfigError, match="training events"):
        FT.first_events(graphs, 4)


def test_study_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="study.metric"):
        D.split_data_study_config(load_config(EXPERIMENT, TINY + ["study.metric=mse"]))
    with pytest.raises(ConfigError, match="batching.graphs_per_step"):
        D.split_data_study_config(load_config(EXPERIMENT, TINY + ["study.train_sizes=(2, 8)"]))
    base, _ = D.split_data_study_config(load_config(EXPERIMENT, TINY))
    assert base.data.n_train == 8 and base.train.steps == 30   # one split: validation events never move


def test_data_size_study_end_to_end_and_resume(tmp_path, capsys):
    config = load_config(EXPERIMENT, TINY)
    out = D.run_data_size_study(config, tmp_path, progress=False)
    for name in ("results.csv", "summary.csv", "results.md", "results.json", "data_size.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    df, prov = read_results_csv(tmp_path / "results.csv")
    assert sorted(df.n_train_events.unique()) == [4, 8] and len(df) == 4 and set(df.seed) == {1, 2}
    assert prov["commit"] and prov["config"]["study"]["train_sizes"] == [4, 8]
    assert df.val.between(0, 1).all() and df.train.between(0, 1).all()
    np.testing.assert_allclose(df.gap, df.train - df.val)           # same floats, subtracted once
    assert (df.n_val_graphs == 6).all() and set(df.n_train_graphs) == {4, 8}
    for _, row in df.iterrows():
        run = json.loads((tmp_path / f"points/n{row.n_train_events:04d}/seed{row.seed}/result.json").read_text())
        assert run["n_train_events"] == row.n_train_events and run["steps"] <= 30
        assert run["best_val_auc"] == row.val and run["best_train_auc"] == row.train
    summary = out["summary"]
    assert list(summary.n_runs) == [2, 2] and np.isfinite(summary.val_std).all()
    md = (tmp_path / "results.md").read_text()
    assert "| 4 | " in md and "| 8 | " in md and "±" in md and "Provenance" in md

    # resume through the CLI: the finished point is read back, the removed one redone alone
    keep = tmp_path / "points/n0004"
    finished = {f: f.stat().st_mtime_ns for f in keep.rglob("*") if f.is_file()}
    (tmp_path / "points/n0008/point.json").unlink()
    for run_dir in (tmp_path / "points/n0008").glob("seed*"):
        (run_dir / "result.json").unlink()
    assert cli_main(["scale", "--config", EXPERIMENT, "--workdir", str(tmp_path), "--no-progress",
                     *[f"--config.{o}" for o in TINY]]) == 0
    assert "data-size study: 2 sizes" in capsys.readouterr().out
    assert {f: f.stat().st_mtime_ns for f in finished} == finished
    df2, _ = read_results_csv(tmp_path / "results.csv")
    # the redone point trains the same steps on the same shapes in the same process: bitwise equal
    assert df2[["train", "val", "best_step"]].equals(df[["train", "val", "best_step"]])
