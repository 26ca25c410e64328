"""`gnntrack train` errors at the edge (bad config keys, missing data directories); the shipped
experiment files load and validate; the run directory's lifecycle (a rerun of a finished run, a
second process on a busy directory, an edited config.json, a full disk) ends in the right result
or one clear line."""

import errno
import json
import shutil
import socket
from pathlib import Path

import pytest

from gnntrack.cli import main
from gnntrack.io.lock import LOCK_FILE_NAME
from tests.io.test_lock import holder  # noqa: F401 - a fixture: a process holding a directory's lock

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "experiments" / "smoke.py"


def test_unknown_override_key_is_one_clear_error(tmp_path, capsys):
    code = main(["train", "--config", str(SMOKE), "--workdir", str(tmp_path / "run"),
                 "--config.train.stepz=3"])
    err = capsys.readouterr().err
    assert code == 2
    assert "unknown config key 'train.stepz'" in err and "'steps'" in err
    assert "Traceback" not in err
    assert not (tmp_path / "run").exists()  # rejected before anything is written


def test_unknown_key_in_experiment_file(tmp_path, capsys):
    experiment = tmp_path / "bad.py"
    experiment.write_text(
        "from gnntrack.train.defaults import default_config\n"
        "def get_config():\n"
        "    config = default_config()\n"
        "    config.optimizer.learning_rate = 1e-3\n"
        "    return config\n")
    code = main(["train", "--config", str(experiment), "--workdir", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2
    assert "unknown config key 'config.optimizer.learning_rate'" in err


def test_missing_data_directory(tmp_path, capsys):
    missing = tmp_path / "no_such_graphs"
    code = main(["train", "--config", str(SMOKE), "--workdir", str(tmp_path / "run"),
                 "--config.data.source=graphs", f"--config.data.input_dir={missing}"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"data directory not found: {missing}" in err and "data.input_dir" in err


def test_empty_data_directory_for_events(tmp_path, capsys):
    empty = tmp_path / "events"
    empty.mkdir()
    code = main(["train", "--config", str(SMOKE), "--workdir", str(tmp_path / "run"),
                 "--config.data.source=events", f"--config.data.input_dir={empty}"])
    err = capsys.readouterr().err
    assert code == 2
    assert "no events" in err and str(empty) in err


@pytest.mark.parametrize("name", ["quickstart", "smoke", "segment_classifier_barrel_pt1",
                                  "interaction_network_pixel_pt1", "segment_classifier_pixel_pt1_mu200"])
def test_training_experiment_files_load_and_validate(name):
    from gnntrack.config import load_config
    from gnntrack.train.defaults import validate_config

    config = load_config(ROOT / "experiments" / f"{name}.py")
    validate_config(config)
    assert config.train.steps > 0 and config.data.n_train > 0


@pytest.mark.parametrize("override, message", [
    ("--config.optimizer.lr=-1e-3", "config key 'optimizer.lr' must be a finite number > 0.0, got -0.001"),
    ("--config.optimizer.weight_decay=-0.1", "'optimizer.weight_decay' must be a finite number >= 0.0, got -0.1"),
    ("--config.batching.graphs_per_step=0", "config key 'batching.graphs_per_step' must be >= 1, got 0"),
])
def test_impossible_setting_stops_before_any_work(tmp_path, capsys, override, message):
    # lr <= 0 used to train silently (gradient ascent); now the config is refused where it enters
    code = main(["train", "--config", str(SMOKE), "--workdir", str(tmp_path / "run"), override])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()  # refused before data, checkpoints or logs are written


# --- the run directory's lifecycle: reruns, locks, edited configs, full disks -----------------

@pytest.fixture(scope="module")
def finished(tmp_path_factory, compilation_cache):
    """A finished smoke run made by `gnntrack train`: (run directory, data cache)."""
    root = tmp_path_factory.mktemp("finished")
    assert main(["train", "--config", str(SMOKE), "--workdir", str(root / "run"), "--no-progress",
                 f"--config.data.cache_dir={root / 'cache'}"]) == 0
    return root / "run", root / "cache"


def _copy_run(finished, tmp_path):
    run, cache = finished
    shutil.copytree(run, tmp_path / "run")
    return tmp_path / "run", cache


def _train(run, cache, *extra):
    return main(["train", "--config", str(SMOKE), "--workdir", str(run), "--no-progress",
                 f"--config.data.cache_dir={cache}", *extra])


def test_rerunning_a_finished_run_keeps_its_results(finished, tmp_path, capsys):
    # used to rewrite result.json with loss NaN and no val_* keys, drop report.md's validation
    # row and append a second test record to metrics.jsonl
    run, cache = _copy_run(finished, tmp_path)
    before = {name: (run / name).read_bytes() for name in ("result.json", "report.md", "metrics.jsonl")}
    capsys.readouterr()
    assert _train(run, cache) == 0
    out = capsys.readouterr().out.strip()
    assert len(out.splitlines()) == 1 and "complete" in out and str(run) in out
    for name, data in before.items():
        assert (run / name).read_bytes() == data, name


def test_a_second_train_on_a_busy_workdir_stops_at_once(tmp_path, capsys, holder):
    proc = holder(tmp_path / "run")
    code = main(["train", "--config", str(SMOKE), "--workdir", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert f"pid {proc.pid} on {socket.gethostname()}" in err
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [LOCK_FILE_NAME]  # nothing else written


def test_a_workdir_that_is_a_file_is_one_clear_error(tmp_path, capsys):
    (tmp_path / "run").write_text("not a directory")
    assert main(["train", "--config", str(SMOKE), "--workdir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--workdir" in err and "not a directory" in err


def test_an_edited_config_json_that_no_longer_fits_the_checkpoint(finished, tmp_path, capsys):
    # used to end in orbax/flax shape errors when resuming with the run's own config.json
    run, cache = _copy_run(finished, tmp_path)
    (run / "result.json").unlink()  # not complete: the resume restores the checkpoint
    config = json.loads((run / "config.json").read_text())
    config["model"]["hidden"] = 16
    (run / "config.json").write_text(json.dumps(config))
    capsys.readouterr()
    assert main(["train", "--config", str(run / "config.json"), "--workdir", str(run), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert str(run / "config.json") in err and "in the checkpoint but" in err and "(8," in err and "16" in err


def test_a_full_disk_while_saving_a_checkpoint_is_one_line(tmp_path, capsys, monkeypatch, finished):
    from orbax.checkpoint._src.handlers import json_checkpoint_handler as jh

    _, cache = finished
    original, calls = jh.JsonCheckpointHandler._save_fn, []

    async def save_fn(self, x, directory):  # the second checkpoint (step 3) finds the disk full
        calls.append(directory)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device", str(directory))
        return await original(self, x, directory)

    monkeypatch.setattr(jh.JsonCheckpointHandler, "_save_fn", save_fn)
    assert _train(tmp_path / "run", cache) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert str(tmp_path / "run" / "checkpoints") in err and "no space left on device" in err
    monkeypatch.undo()
    from gnntrack.train.checkpoint import Checkpointer

    with Checkpointer(tmp_path / "run" / "checkpoints", read_only=True) as ck:
        assert ck.restore_newest().step == 2  # the earlier checkpoint is intact


# --- models by name: another built-in model on an experiment, a model from an imported file -----

TINY = ["--config.data.n_train=2", "--config.data.n_val=1", "--config.data.n_test=1",
        "--config.data.simulation.pileup=5.0", "--config.data.workers=1", "--config.train.steps=2",
        "--config.train.eval_every=0", "--config.train.checkpoint_every=0", "--config.train.log_every=1",
        "--config.batching.graphs_per_step=2", "--config.batching.max_buckets=1",
        "--config.parallel.n_devices=1", "--config.eval.full_events=False", "--no-progress"]


def test_barrel_experiment_trains_the_interaction_network(tmp_path, compilation_cache):
    # the segment classifier's leftover keys used to make this a config error
    run = tmp_path / "run"
    assert main(["train", "--config", str(ROOT / "experiments" / "segment_classifier_barrel_pt1.py"),
                 "--workdir", str(run), "--config.model.name=interaction_network",
                 "--config.model.hidden=8", "--config.optimizer.warmup_steps=1", "--config.graph.n_phi_sections=2",
                 "--config.graph.n_eta_sections=1", f"--config.data.cache_dir={tmp_path / 'cache'}", *TINY]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["name"] == "interaction_network" and "impl" not in config["model"]
    assert config["model"]["hidden"] == 8 and config["model"]["edge_out"] == 4
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("loss" in r for r in records)


def test_a_model_from_an_imported_file_trains_and_evaluates(tmp_path, compilation_cache, monkeypatch):
    import gnntrack.config
    import gnntrack.nn.registry
    from gnntrack.detector.simulate import default_simulation_config, simulate_events
    from tests.test_config import write_plugin_experiment

    exp = write_plugin_experiment(tmp_path / "project")
    run = tmp_path / "run"
    assert main(["train", "--config", str(exp), "--workdir", str(run), "--config.model.name=plugin_edge_mlp",
                 f"--config.data.cache_dir={tmp_path / 'cache'}", *TINY]) == 0
    # smoke.py sets model.hidden = 8 away from the segment classifier's default: the plugin gets it
    assert json.loads((run / "config.json").read_text())["model"] == {"name": "plugin_edge_mlp", "hidden": 8}
    # evaluate as a fresh process would: the plugin neither imported nor registered
    monkeypatch.setattr(gnntrack.config, "_IMPORTED", set())
    monkeypatch.delitem(gnntrack.nn.registry._MODELS, "plugin_edge_mlp")
    sim = default_simulation_config()
    sim.pileup = 3
    simulate_events(tmp_path / "events", 1, sim, seed=3)
    assert main(["evaluate", "--workdir", str(run), "--input", str(tmp_path / "events"),
                 "--out", str(tmp_path / "report"), "--n-boot", "10", "--no-progress"]) == 0
    assert "plugin_edge_mlp" in gnntrack.nn.registry.available_models()
    assert (tmp_path / "report" / "metrics.json").exists()
