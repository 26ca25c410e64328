"""`gnntrack train` errors at the edge (bad config keys, missing data directories); the shipped
experiment files load and validate."""

from pathlib import Path

import pytest

from gnntrack.cli import main

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
