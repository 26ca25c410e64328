"""Sweeps on a cheap injected objective: grid coverage, budgets, resumption after a kill, two
workers on one SQLite study, search-space validation, summary files, and the CLI."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import ml_collections
import pandas as pd
import pytest

from gnntrack.errors import ConfigError
from gnntrack.studies import search_space as ss
from gnntrack.studies.sweep import SweepError, default_sweep_config, run_sweep, run_sweep_from_config

HERE = Path(__file__).resolve().parent
FAST = dict(poll_seconds=0.1, heartbeat_seconds=1, grace_seconds=3)


def base_config() -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(dict(seed=7, optimizer=dict(lr=1e-3, warmup_steps=0),
                                          model=dict(hidden=32, activation="tanh")))


def quadratic_train(config, workdir, *, report_fn=None, resume=True):
    """A deterministic stand-in for train_and_evaluate: best at lr=1e-3, hidden=32, relu.

    Appends one JSON line per call to <sweep workdir>/calls.jsonl; with SWEEP_TEST_CRASH_AT=k
    the process dies (os._exit, no cleanup, like a SIGKILL) in the middle of the k-th call.
    Reports val_auc at steps 1, 2, 3 (a fraction of the final value) for the pruners.
    """
    workdir = Path(workdir)
    calls = workdir.parents[1] / "calls.jsonl"
    resumed = (workdir / "ckpt").exists()
    with open(calls, "a") as f:
        f.write(json.dumps({"run_dir": workdir.name, "lr": config.optimizer.lr,
                            "hidden": config.model.hidden, "activation": config.model.activation,
                            "seed": config.seed, "resumed": resumed, "pid": os.getpid()}) + "\n")
    (workdir / "ckpt").write_text("step 1")
    crash_at = os.environ.get("SWEEP_TEST_CRASH_AT")
    if crash_at and len(calls.read_text().splitlines()) == int(crash_at):
        os._exit(3)
    score = (0.9 - (math.log10(config.optimizer.lr) + 3) ** 2 / 20 - abs(config.model.hidden - 32) / 400
             + (0.05 if config.model.activation == "relu" else 0.0))
    for step in (1, 2, 3):
        value = score * (0.5 + step / 6)
        if report_fn is not None and report_fn(step, {"val_auc": value, "val_f1": value / 2}):
            return {"val_auc": value, "val_f1": value / 2, "steps": step}
    return {"val_auc": score, "val_f1": score / 2, "steps": 3}


def _calls(workdir: Path) -> list[dict]:
    path = workdir / "calls.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


GRID_SPACE = [ss.log_uniform("optimizer.lr", 1e-4, 1e-2, grid=[1e-4, 1e-3, 1e-2]),
              ss.choice("model.activation", ["tanh", "relu"]),
              ss.int_range("model.hidden", 16, 48, step=16)]
RANDOM_SPACE = [ss.log_uniform("optimizer.lr", 1e-5, 1e-1), ss.int_range("model.hidden", 8, 64, step=8),
                ss.choice("model.activation", ["tanh", "relu"])]


def _finished(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["state"].isin(["COMPLETE", "PRUNED"])]


def _param_tuples(df: pd.DataFrame) -> list[tuple]:
    return [tuple(row) for row in df[["optimizer.lr", "model.activation", "model.hidden"]].itertuples(index=False)]


# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("entry, message", [
    (ss.log_uniform("optimizer.lrr", 1e-4, 1e-2), r"sweep.space\[1\] 'optimizer.lrr'.*did you mean 'lr'"),
    (ss.uniform("optimizer.lr", 0.1, 0.01), r"sweep.space\[1\] 'optimizer.lr': low=0.1 > high=0.01"),
    (ss.log_uniform("optimizer.lr", 0.0, 0.01), r"sweep.space\[1\] 'optimizer.lr': log-uniform needs low > 0"),
    ({"key": "optimizer.lr", "distribution": "loguniform", "low": 1e-4, "high": 1e-2},
     r"sweep.space\[1\] 'optimizer.lr': unknown distribution 'loguniform'"),
    ({"key": "optimizer.lr", "distribution": "uniform", "low": 1e-4, "hi": 1e-2},
     r"unknown field\(s\) hi"),
    (ss.int_range("model.hidden", 8.0, 64), "int bounds must be integers"),
    (ss.choice("model.activation", []), "'choices' must be a non-empty list"),
    (ss.choice("model.hidden", ["wide", 16]), r"sweep.space\[1\] 'model.hidden'"),  # str into an int key
    (ss.choice("model", [1, 2]), "is a group"),
    (ss.int_range("model.hidden", 16, 48, step=16), "listed twice"),
])
def test_bad_search_space_entry_is_a_config_error_naming_it(tmp_path, entry, message):
    space = [ss.int_range("model.hidden", 16, 48, step=16), entry]
    with pytest.raises(ConfigError, match=message):
        run_sweep(base_config(), space, tmp_path, n_trials=2, sampler="random", train_fn=quadratic_train)
    assert not (tmp_path / "study.db").exists()  # validated before anything is created


@pytest.mark.parametrize("entry, message", [
    (ss.uniform("optimizer.lr", -1e-3, 1e-2), r"sweep.space\[1\] 'optimizer.lr': a trial with value -0.001 "
                                               r"would fail: config key 'optimizer.lr' must be a finite number > 0"),
    (ss.uniform("optimizer.momentum", 0.5, 1.0), r"'optimizer.momentum'.*value 1.0.*in \[0.0, 1.0\), got 1.0"),
    (ss.choice("optimizer.weight_decay", [0.0, -1e-4]), r"'optimizer.weight_decay'.*>= 0.0, got -0.0001"),
    (ss.int_range("batching.graphs_per_step", 0, 4), r"'batching.graphs_per_step'.*must be >= 1, got 0"),
])
def test_search_space_that_can_sample_an_impossible_setting_is_refused(tmp_path, entry, message):
    # a run config's space is checked value by value (bounds, grid, choices) against the run
    # config's validation: a sampled lr <= 0 would otherwise stop the sweep mid-way, or train
    # silently with gradient ascent
    from gnntrack.train.defaults import default_config

    space = [ss.log_uniform("optimizer.lr", 1e-4, 1e-2) if entry["key"] != "optimizer.lr"
             else ss.int_range("model.hidden", 8, 16, step=8), entry]
    with pytest.raises(ConfigError, match=message):
        run_sweep(default_config(), space, tmp_path, n_trials=2, sampler="random", train_fn=quadratic_train)
    assert not (tmp_path / "study.db").exists()  # refused before the study exists
    ss.parse_search_space(space[:1], default_config())  # the other entry alone is fine


def test_bad_sweep_settings_and_grid_without_values(tmp_path):
    with pytest.raises(ConfigError, match="sweep.sampler"):
        run_sweep(base_config(), RANDOM_SPACE, tmp_path, n_trials=2, sampler="bayes", train_fn=quadratic_train)
    with pytest.raises(ConfigError, match="'optimizer.lr' .*grid=\\[...\\]"):
        run_sweep(base_config(), RANDOM_SPACE, tmp_path, n_trials=2, sampler="grid", train_fn=quadratic_train)
    config = base_config()
    config.sweep = default_sweep_config()
    config.sweep.space = tuple(RANDOM_SPACE)
    with config.sweep.unlocked():
        config.sweep.n_trails = 3
    with pytest.raises(ConfigError, match="sweep.n_trails.*n_trials"):
        run_sweep_from_config(config, tmp_path, train_fn=quadratic_train)


def test_grid_visits_every_point_exactly_once_and_rerun_adds_nothing(tmp_path):
    result = run_sweep(base_config(), GRID_SPACE, tmp_path, n_trials=100, sampler="grid", pruner="none",
                       train_fn=quadratic_train, show_progress=False, write_summary=False, **FAST)
    grid = {(p["optimizer.lr"], p["model.activation"], p["model.hidden"]) for p in ss.grid_points(
        ss.parse_search_space(GRID_SPACE))}
    assert len(grid) == 18
    done = _param_tuples(_finished(result.trials_df))
    assert sorted(done) == sorted(grid)  # every point, once
    assert len(_calls(tmp_path)) == 18
    assert result.best_params == {"optimizer.lr": 1e-3, "model.activation": "relu", "model.hidden": 32}
    # each trial's config is the base with the point applied; the base seed is kept and recorded
    assert {c["seed"] for c in _calls(tmp_path)} == {7}
    assert set(result.trials_df["seed"]) == {7}
    assert (tmp_path / "trials" / "trial_0000" / "trial.json").exists()

    again = run_sweep(base_config(), GRID_SPACE, tmp_path, n_trials=100, sampler="grid", pruner="none",
                      train_fn=quadratic_train, show_progress=False, write_summary=False, **FAST)
    assert len(_calls(tmp_path)) == 18 and len(again.trials_df) == 18


def test_budget_counts_finished_trials_pruning_and_extension(tmp_path):
    kw = dict(sampler="random", pruner="median", train_fn=quadratic_train, show_progress=False,
              write_summary=False, seed=3, pruner_startup_trials=2, **FAST)
    first = run_sweep(base_config(), RANDOM_SPACE, tmp_path, n_trials=8, **kw)
    assert len(_finished(first.trials_df)) == 8 == len(_calls(tmp_path))
    assert (first.trials_df["state"] == "PRUNED").any()  # median pruning stops weak trials early
    pruned = first.trials_df[first.trials_df["state"] == "PRUNED"]
    assert (pruned["last_step"] < 3).all()
    # the study continues: raising the budget runs only the missing trials, with new draws
    second = run_sweep(base_config(), RANDOM_SPACE, tmp_path, n_trials=11, **kw)
    assert len(_finished(second.trials_df)) == 11 == len(_calls(tmp_path))
    assert len(set(_param_tuples(second.trials_df))) == 11
    # a different search space on the same study is refused
    with pytest.raises(SweepError, match="different sweep.space"):
        run_sweep(base_config(), RANDOM_SPACE[:2], tmp_path, n_trials=12, **kw)


def test_same_seed_same_study(tmp_path):
    kw = dict(n_trials=6, sampler="tpe", pruner="none", train_fn=quadratic_train, show_progress=False,
              write_summary=False, seed=11, tpe_startup_trials=3, **FAST)
    a = run_sweep(base_config(), RANDOM_SPACE, tmp_path / "a", **kw)
    b = run_sweep(base_config(), RANDOM_SPACE, tmp_path / "b", **kw)
    pd.testing.assert_frame_equal(a.trials_df.drop(columns=["duration_s"]), b.trials_df.drop(columns=["duration_s"]))


def _sweep_script(workdir: Path, n_trials: int, sampler: str, workers: int = 1) -> str:
    return textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(HERE)!r})
        from test_sweep import base_config, quadratic_train, GRID_SPACE, RANDOM_SPACE, FAST
        from gnntrack.studies.sweep import run_sweep
        space = GRID_SPACE if {sampler!r} == "grid" else RANDOM_SPACE
        run_sweep(base_config(), space, {str(workdir)!r}, n_trials={n_trials}, sampler={sampler!r},
                  pruner="none", train_fn=quadratic_train, show_progress=False, write_summary=False,
                  workers={workers}, **FAST)
    """)


@pytest.mark.parametrize("sampler", ["random", "grid"])
def test_killed_sweep_resumes_without_losing_or_repeating_trials(tmp_path, sampler):
    n_trials = 6 if sampler == "random" else 18
    space = RANDOM_SPACE if sampler == "random" else GRID_SPACE
    script = _sweep_script(tmp_path, n_trials=n_trials, sampler=sampler)
    env = {**os.environ, "SWEEP_TEST_CRASH_AT": "4"}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stderr[-2000:]  # died inside the 4th trial
    assert len(_calls(tmp_path)) == 4

    # rerun the same sweep: the dead process's RUNNING trial is detected at once and re-queued
    result = run_sweep(base_config(), space, tmp_path, n_trials=n_trials, sampler=sampler, pruner="none",
                       train_fn=quadratic_train, show_progress=False, write_summary=False, **FAST)
    df = result.trials_df
    calls = _calls(tmp_path)
    finished = _finished(df)
    assert len(finished) == n_trials and len(set(_param_tuples(finished))) == n_trials
    killed = df[df["state"] == "FAIL"]
    assert len(killed) == 1 and "re-queued" in killed["note"].iloc[0]
    retry = df[df["retry_of"] == killed["number"].iloc[0]]
    assert len(retry) == 1 and retry["state"].iloc[0] == "COMPLETE"
    # same parameters and run directory: the training resumed from the killed run's checkpoint
    assert _param_tuples(retry) == _param_tuples(killed)
    assert retry["run_dir"].iloc[0] == killed["run_dir"].iloc[0]
    assert [c["resumed"] for c in calls].count(True) == 1
    assert len(calls) == n_trials + 1  # every trial once + the re-run of the killed one
    assert sorted({c["run_dir"] for c in calls}) == sorted(finished["run_dir"].str.split("/").str[-1])


def test_two_worker_processes_share_one_sqlite_study(tmp_path):
    # an independent process (like a second terminal) and `workers=2` here (this process and a
    # spawned one): three workers on one grid study
    script = _sweep_script(tmp_path, n_trials=100, sampler="grid")
    other = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    result = run_sweep(base_config(), GRID_SPACE, tmp_path, n_trials=100, sampler="grid", pruner="none",
                       train_fn=quadratic_train, workers=2, show_progress=False, write_summary=False, **FAST)
    _, err = other.communicate(timeout=180)
    assert other.returncode == 0, err[-2000:]
    calls = _calls(tmp_path)
    assert len(calls) == 18 == len(result.trials_df)
    assert len({(c["lr"], c["activation"], c["hidden"]) for c in calls}) == 18
    assert len({c["run_dir"] for c in calls}) == 18
    assert len({c["pid"] for c in calls}) >= 2  # the work was shared


def test_summary_table_and_plots(tmp_path):
    result = run_sweep(base_config(), RANDOM_SPACE, tmp_path, n_trials=6, sampler="tpe", pruner="asha",
                       train_fn=quadratic_train, show_progress=False, seed=1, tpe_startup_trials=3, **FAST)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["best"]["trial"] == result.best_trial
    assert summary["best"]["value"] == pytest.approx(result.best_value)
    assert set(summary["best"]["params"]) == {"optimizer.lr", "model.hidden", "model.activation"}
    complete = result.trials_df[result.trials_df["state"] == "COMPLETE"]
    assert result.best_value == pytest.approx(complete["value"].max())
    baseline = summary["baseline"]  # trial 0 ran the base config's own values
    assert baseline["trial"] == 0 and baseline["improvement"] == pytest.approx(result.best_value - baseline["value"])
    assert set(summary["best"]["metrics"]) == {"val_auc", "val_f1"}
    table = pd.read_csv(tmp_path / "trials.csv")
    assert len(table) == 6 and {"number", "state", "value", "optimizer.lr", "seed", "run_dir"} <= set(table.columns)
    markdown = (tmp_path / "trials.md").read_text()
    assert f"Best: trial {result.best_trial}" in markdown and markdown.count("\n| ") >= 6
    for name in ("history.png", "importances.png", "parallel_coordinates.png"):
        data = (tmp_path / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_cli_reports_bad_entry_and_rewrites_summary(tmp_path, capsys):
    from gnntrack.cli import main

    experiment = tmp_path / "exp.py"
    experiment.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(HERE)!r})
        from test_sweep import base_config, RANDOM_SPACE
        from gnntrack.studies.sweep import default_sweep_config
        from gnntrack.studies import search_space as ss

        def get_config():
            config = base_config()
            config.sweep = default_sweep_config()
            config.sweep.space = tuple(RANDOM_SPACE) + (ss.uniform("optimizer.warmup", 0, 1),)
            return config
    """))
    code = main(["sweep", "--config", str(experiment), "--workdir", str(tmp_path / "w")])
    err = capsys.readouterr().err
    assert code == 2 and "sweep.space[3] 'optimizer.warmup'" in err and "warmup_steps" in err

    workdir = tmp_path / "w2"
    run_sweep(base_config(), RANDOM_SPACE, workdir, n_trials=3, sampler="random", pruner="none",
              train_fn=quadratic_train, show_progress=False, write_summary=False, **FAST)
    experiment.write_text(experiment.read_text().replace(' + (ss.uniform("optimizer.warmup", 0, 1),)', ""))
    code = main(["sweep", "--config", str(experiment), "--workdir", str(workdir), "--summary-only",
                 "--sampler", "random", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0 and "3 complete" in out and "best: trial" in out
    assert (workdir / "trials.md").exists() and len(_calls(workdir)) == 3


def diverging_train(config, workdir, *, report_fn=None, resume=True):
    """quadratic_train, but large learning rates 'diverge' (an ordinary exception)."""
    if config.optimizer.lr > 1e-2:
        raise FloatingPointError("non-finite loss")
    return quadratic_train(config, workdir, report_fn=report_fn, resume=resume)


def test_failing_trials_are_recorded_and_replaced(tmp_path):
    space = [ss.log_uniform("optimizer.lr", 1e-4, 1e-1), ss.int_range("model.hidden", 8, 64, step=8)]
    result = run_sweep(base_config(), space, tmp_path, n_trials=6, sampler="random", pruner="none",
                       train_fn=diverging_train, show_progress=False, write_summary=False, seed=5, **FAST)
    df = result.trials_df
    failed = df[df["state"] == "FAIL"]
    assert len(_finished(df)) == 6 and len(failed) >= 1  # failures do not count towards the budget
    assert (failed["optimizer.lr"] > 1e-2).all() and failed["note"].str.contains("non-finite loss").all()
    # a sweep where every trial fails stops with a clear error instead of looping forever
    with pytest.raises(SweepError, match="trials failed with an error"):
        run_sweep(base_config(), [ss.log_uniform("optimizer.lr", 2e-2, 1e-1)], tmp_path / "all_fail",
                  n_trials=3, sampler="random", pruner="none", train_fn=diverging_train,
                  show_progress=False, write_summary=False, **FAST)


def interrupted_once_train(config, workdir, *, report_fn=None, resume=True):
    """Raises KeyboardInterrupt (Ctrl-C) in the first call of the second trial, then behaves."""
    marker = Path(workdir).parents[1] / "interrupted"
    if Path(workdir).name == "trial_0001" and not marker.exists():
        marker.write_text("")
        raise KeyboardInterrupt
    return quadratic_train(config, workdir, report_fn=report_fn, resume=resume)


def test_ctrl_c_requeues_the_running_trial(tmp_path):
    kw = dict(n_trials=4, sampler="tpe", pruner="none", train_fn=interrupted_once_train, show_progress=False,
              write_summary=False, tpe_startup_trials=2, **FAST)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(base_config(), RANDOM_SPACE, tmp_path, **kw)
    result = run_sweep(base_config(), RANDOM_SPACE, tmp_path, **kw)
    df = result.trials_df
    assert len(_finished(df)) == 4
    interrupted = df[df["number"] == 1]
    retry = df[df["retry_of"] == 1]
    assert interrupted["state"].item() == "FAIL" and retry["state"].item() == "COMPLETE"
    assert _param_tuples(retry) == _param_tuples(interrupted) and retry["run_dir"].item() == "trials/trial_0001"
    # the baseline (base config values) is the first trial of a random/TPE study
    assert df["note"].iloc[0].startswith("baseline") and df["optimizer.lr"].iloc[0] == 1e-3


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")
def test_trials_of_lost_workers_on_other_machines_are_requeued(tmp_path):
    """A RUNNING trial whose heartbeat stopped (worker on another host) and one claimed by a
    process that died before recording itself are failed after the grace period and re-run."""
    import time

    import optuna

    from gnntrack.studies.sweep import SweepSettings, default_sweep_config
    from gnntrack.studies.sweep.study import StudyContext

    settings = SweepSettings.from_config({**default_sweep_config().to_dict(), "n_trials": 4,
                                          "sampler": "random", "pruner": "none", "poll_seconds": 0.1,
                                          "heartbeat_seconds": 1, "grace_seconds": 2})
    specs = ss.parse_search_space(RANDOM_SPACE)
    ctx = StudyContext(base_config(), specs, settings, tmp_path, quadratic_train)
    study = ctx.open_study()
    lost = study.ask()  # the queued baseline trial
    params = {s.key: s.suggest(lost) for s in specs}
    lost.set_user_attr("worker", "some-other-host:4242")
    ctx.storage.record_heartbeat(ctx.trial_id(lost.number))
    unrecorded = study.ask()  # claimed, then its process died at once
    time.sleep(3.2)

    result = run_sweep(base_config(), RANDOM_SPACE, tmp_path, n_trials=4, sampler="random", pruner="none",
                       train_fn=quadratic_train, show_progress=False, write_summary=False,
                       **{**FAST, "grace_seconds": 2})
    df = result.trials_df
    assert len(_finished(df)) == 4
    states = df.set_index("number")["state"]
    assert states[lost.number] == "FAIL" and states[unrecorded.number] == "FAIL"
    retry = df[df["retry_of"] == lost.number]
    assert retry["state"].item() == "COMPLETE"
    assert retry["optimizer.lr"].item() == params["optimizer.lr"] == 1e-3  # same (baseline) parameters
    assert optuna.trial.TrialState.RUNNING.name not in set(df["state"])


def test_unknown_metric_stops_with_the_available_names(tmp_path):
    with pytest.raises(ConfigError, match="reports no 'val_auroc'; available: steps, val_auc, val_f1"):
        run_sweep(base_config(), RANDOM_SPACE, tmp_path, n_trials=3, sampler="random", metric="val_auroc",
                  train_fn=quadratic_train, show_progress=False, write_summary=False, **FAST)
    assert len(_calls(tmp_path)) == 1


def test_a_placeholder_in_the_base_that_every_trial_sets_is_fine():
    from gnntrack.train.defaults import default_config

    base = default_config()
    base.optimizer.lr = 0.0  # never used: every trial samples the lr
    ss.parse_search_space([ss.log_uniform("optimizer.lr", 1e-4, 1e-2)], base)
    base.data.n_train = 0  # no trial changes this one
    with pytest.raises(ConfigError, match="the base run config is invalid: config key 'data.n_train'"):
        ss.parse_search_space([ss.log_uniform("optimizer.lr", 1e-4, 1e-2)], base)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_stop_request_that_python_drops_is_raised_again():
    """A KeyboardInterrupt raised while the interpreter runs a __del__ or gc callback (jax has one)
    is printed and dropped: a worker told to stop by SIGTERM then ran on. The stop is raised
    again until the process takes it."""
    import signal
    import time

    from gnntrack.studies.sweep.signals import stop_on_signals

    class SignalsInDel:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGUSR1)
            sum(range(10_000))  # the handler runs in here, and its KeyboardInterrupt is dropped

    previous = signal.getsignal(signal.SIGUSR1)
    with pytest.raises(KeyboardInterrupt, match="SIGUSR1"):
        with stop_on_signals((signal.SIGUSR1,)):
            SignalsInDel()
            for _ in range(300):  # raised again within a second (bounded: 30 s)
                time.sleep(0.1)
    assert signal.getsignal(signal.SIGUSR1) is previous
