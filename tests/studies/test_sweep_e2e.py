"""One tiny sweep trial through the real training loop (experiments/smoke.py): the trial is an
ordinary run directory with the sampled value applied, and validation reports reach the study.
`gnntrack sweep --workers 2` stopped by Ctrl-C or by kill -9 of its parent while trials train."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gnntrack.config import load_config
from gnntrack.studies import search_space as ss
from gnntrack.studies.sweep import default_sweep_config, run_sweep_from_config
from tests.studies.processes import children, gone, needs_proc, process_group, wait_for

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_one_real_trial_is_an_ordinary_run_directory(tmp_path):
    config = load_config(ROOT / "experiments" / "smoke.py")
    with config.unlocked():
        config.sweep = default_sweep_config()
    config.sweep.space = (ss.log_uniform("optimizer.lr", 1e-3, 1e-2, grid=[5e-3]),)
    config.sweep.sampler = "grid"
    config.sweep.pruner = "median"
    config.sweep.metric = "val_auc"
    config.sweep.poll_seconds = 0.1

    result = run_sweep_from_config(config, tmp_path, show_progress=False, write_summary=False)

    df = result.trials_df
    assert list(df["state"]) == ["COMPLETE"] and result.best_params == {"optimizer.lr": 5e-3}
    run_dir = tmp_path / "trials" / "trial_0000"
    assert result.best_run_dir == str(run_dir)
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["optimizer"]["lr"] == 5e-3 and saved["seed"] == 0 and "sweep" not in saved
    assert saved["data"]["cache_dir"] == str(tmp_path / "data")  # trials share the data cache
    assert (run_dir / "metrics.jsonl").exists() and (run_dir / "trial.json").exists()
    final = json.loads((run_dir / "result.json").read_text())
    assert result.best_value == pytest.approx(final["val_auc"])
    assert df["last_step"].iloc[0] == final["steps"] == 6  # validations at steps 3 and 6 were reported


# --------------------------------------------------------------------------------------------
# Stopping a `gnntrack sweep --workers 2` (parent + one worker process) while trials train:
# Ctrl-C, and kill -9 of the parent. Tiny trials of the default toy sweep.

TOY_SWEEP = ROOT / "experiments" / "sweeps" / "toy_default.py"


def _sweep_command(workdir: Path, workers: int) -> list[str]:
    return [sys.executable, "-m", "gnntrack", "sweep", "--config", str(TOY_SWEEP), "--workdir", str(workdir),
            "--workers", str(workers), "--n-trials", "2", "--config.data.n_train=4", "--config.train.steps=8",
            "--config.train.eval_every=4", "--config.train.checkpoint_every=4",
            "--config.sweep.poll_seconds=0.2", "--config.sweep.heartbeat_seconds=1",
            "--config.sweep.grace_seconds=5"]


def _open_study(workdir: Path):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name="sweep", storage=f"sqlite:///{workdir / 'study.db'}")


def _running(workdir: Path, *, training: bool) -> list[int]:
    """Numbers of the RUNNING trials (with `training`: those whose run has started, config.json
    written), once there are two. Plain SQL on the study database: a cheap poll, and no schema
    creation racing the sweep's own."""
    if not (workdir / "study.db").exists():
        return []
    try:
        with contextlib.closing(sqlite3.connect(workdir / "study.db", timeout=10)) as db:
            rows = db.execute("SELECT t.number, a.value_json FROM trials t LEFT JOIN trial_user_attributes a "
                              "ON a.trial_id = t.trial_id AND a.key = 'run_dir' WHERE t.state = 'RUNNING'").fetchall()
    except sqlite3.Error:  # the schema is not there yet
        return []
    running = [n for n, run_dir in rows
               if not training or (run_dir and (workdir / json.loads(run_dir) / "config.json").exists())]
    return running if len(running) >= 2 else []


def _handed_back(trials: list, number: int) -> bool:
    """Trial `number` ended FAIL and one re-queued copy (same parameters and run directory) exists."""
    trial = trials[number]
    retries = [t for t in trials if t.user_attrs.get("retry_of") == number]
    # a queued trial holds its parameters as fixed_params until a worker takes it
    params = retries[0].params or retries[0].system_attrs.get("fixed_params") if retries else None
    return (trial.state.name == "FAIL" and len(retries) == 1 and params == trial.params
            and retries[0].user_attrs["run_dir"] == trial.user_attrs["run_dir"])


@needs_proc
@pytest.mark.slow
def test_ctrl_c_on_a_two_worker_sweep_exits_130_with_one_line_and_hands_trials_back(tmp_path):
    log = tmp_path / "sweep.log"
    with process_group(_sweep_command(tmp_path / "sweep", workers=2), log) as proc:
        running = wait_for(lambda: _running(tmp_path / "sweep", training=False), 240, "two trials", proc, log)
        workers = children(proc.pid)
        # The trials are setting up (checkpoint manager, data, first compilations): Ctrl-C there
        # made the parent crash in its teardown (rc -11), 3 times of 3. The assertions below
        # hold wherever the signal lands.
        time.sleep(1.0)
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the whole process group
        proc.wait(timeout=120)
    lines = log.read_text().strip().splitlines()
    assert proc.returncode == 130, "\n".join(lines[-40:])  # was -11: a crash in the interpreter's teardown
    assert lines[-1] == "gnntrack sweep: interrupted" and lines.count(lines[-1]) == 1
    assert len(workers) == 1 and gone(workers[0])  # the parent waited for its worker
    trials = _open_study(tmp_path / "sweep").get_trials(deepcopy=False)
    assert not [t.number for t in trials if t.state.name == "RUNNING"]
    for number in running:  # handed back by whichever process ran it (or finished just before)
        assert _handed_back(trials, number) or trials[number].state.name in ("COMPLETE", "PRUNED")


@needs_proc
@pytest.mark.slow
def test_kill_9_of_the_sweep_parent_stops_its_worker_and_the_rerun_completes(tmp_path):
    workdir, log = tmp_path / "sweep", tmp_path / "sweep.log"
    with process_group(_sweep_command(workdir, workers=2), log) as proc:
        training = wait_for(lambda: _running(workdir, training=True), 240, "two training trials", proc, log)
        workers = children(proc.pid)
        proc.kill()
        proc.wait()
        # the orphaned worker stops at once (parent-death signal) instead of running on
        wait_for(lambda: all(gone(pid) for pid in workers), 60, "end of the orphaned worker")
    assert len(workers) == 1
    study = _open_study(workdir)
    trials = study.get_trials(deepcopy=False)
    assert not [t.number for t in trials if t.state.name in ("COMPLETE", "PRUNED")], "the orphan ran on"
    # the worker handed its trial back; the parent's trial stays RUNNING with a dead process
    assert sorted(t.state.name for t in trials if t.number in training) == ["FAIL", "RUNNING"]
    assert any(_handed_back(trials, number) for number in training)

    rerun = subprocess.run(_sweep_command(workdir, workers=1), capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    trials = study.get_trials(deepcopy=False)
    states = [t.state.name for t in trials]
    assert states.count("COMPLETE") + states.count("PRUNED") == 2
    assert "RUNNING" not in states and "WAITING" not in states
    for number in training:  # both re-run in their own run directories, with the same parameters
        retry = next(t for t in trials if t.user_attrs.get("retry_of") == number)
        assert retry.state.name in ("COMPLETE", "PRUNED") and retry.params == trials[number].params
        assert retry.user_attrs["run_dir"] == trials[number].user_attrs["run_dir"]
