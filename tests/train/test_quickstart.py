"""`gnntrack quickstart`, reduced to a few steps on tiny events: the run directory and report.

The real quickstart's accuracy (efficiency and purity >= 0.97) is measured outside CI; this test
checks that the whole chain runs and writes what it promises.
"""

import json

from gnntrack.cli import main

TINY = ["--config.data.n_train=2", "--config.data.n_val=1", "--config.data.n_test=1",
        "--config.data.simulation.pileup=3.0", "--config.model.hidden=8", "--config.model.n_iters=1",
        "--config.batching.max_buckets=1", "--config.batching.graphs_per_step=2",
        "--config.parallel.n_devices=1", "--config.optimizer.warmup_steps=1",
        "--config.train.steps=3", "--config.train.eval_every=3", "--config.train.log_every=1"]


def test_quickstart_reduced_writes_a_run_directory_and_report(tmp_path, capsys):
    workdir = tmp_path / "qs"
    code = main(["quickstart", "--workdir", str(workdir), "--no-progress", *TINY])
    out = capsys.readouterr().out
    assert code == 0
    for name in ("config.json", "metrics.jsonl", "result.json", "test_scores.npz", "report.md",
                 "loss.png", "roc.png"):
        assert (workdir / name).is_file(), name
    assert (workdir / "checkpoints" / "3").is_dir()
    assert list((workdir / "tensorboard").glob("events.out.tfevents.*"))
    config = json.loads((workdir / "config.json").read_text())
    assert config["graph"]["selection"] == "barrel" and config["graph"]["pt_min"] == 1.0
    assert config["model"]["name"] == "segment_classifier" and config["train"]["steps"] == 3
    result = json.loads((workdir / "result.json").read_text())
    assert result["steps"] == 3 and 0.0 <= result["test_recall"] <= 1.0
    report = (workdir / "report.md").read_text()
    assert "| test (held-out events) |" in report and "![ROC on held-out events](roc.png)" in report
    for png in ("loss.png", "roc.png"):
        assert (workdir / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "efficiency" in out and "purity" in out  # the rich summary table
    # the main job ends in tracks: built on the test event, scored, shown in the report
    tracks = json.loads((workdir / "tracks" / "metrics.json").read_text())
    assert tracks["n_events"] == 1 and tracks["input"]["event_ids"] == result["data"]["test_events"]
    assert 0.0 <= tracks["tracks"]["trackml_score"] <= tracks["tracks"]["trackml_score_ceiling"] <= 1.0
    assert "TrackML score" in out and "## Tracks on the held-out events" in report
    assert "![event display](tracks/plots/event_display.png)" in report
    assert (workdir / "tracks" / "plots" / "event_display.png").is_file()
    assert str(workdir / "report.md") in out
    # Run again: the finished run is left as it was, and the output says so.
    before = {name: (workdir / name).read_bytes() for name in ("result.json", "report.md", "metrics.jsonl")}
    assert main(["quickstart", "--workdir", str(workdir), "--no-progress", *TINY]) == 0
    assert "already complete" in capsys.readouterr().out
    assert {name: (workdir / name).read_bytes() for name in before} == before
