"""Config loading: dotted overrides, type checks, unknown keys rejected with the key named."""

import json

import ml_collections
import pytest

from gnntrack.config import apply_overrides, load_config, save_config
from gnntrack.errors import ConfigError, InputError

EXPERIMENT = '''
import ml_collections
def get_config():
    c = ml_collections.ConfigDict()
    c.seed = 0
    c.optimizer = ml_collections.ConfigDict(dict(name="adam", lr=1e-3, betas=(0.9, 0.999)))
    return c
'''


@pytest.fixture
def experiment(tmp_path):
    path = tmp_path / "exp.py"
    path.write_text(EXPERIMENT)
    return path


def test_overrides_are_typed(experiment):
    config = load_config(experiment, ["--config.optimizer.lr=1", "seed=3", "--config.optimizer.betas=[0.8, 0.9]"])
    assert config.optimizer.lr == 1.0 and isinstance(config.optimizer.lr, float)
    assert config.seed == 3
    assert tuple(config.optimizer.betas) == (0.8, 0.9)


def test_unknown_key_is_named(experiment):
    with pytest.raises(ConfigError, match="optimizer.lrate"):
        load_config(experiment, ["--config.optimizer.lrate=1"])


def test_wrong_type_is_named(experiment):
    with pytest.raises(ConfigError, match="'seed'"):
        load_config(experiment, ["--config.seed=abc"])


def test_missing_file_is_named(tmp_path):
    with pytest.raises(InputError, match="nope.py"):
        load_config(tmp_path / "nope.py")


def test_saved_config_round_trips(experiment, tmp_path):
    config = load_config(experiment, ["seed=7"])
    path = save_config(config, tmp_path / "run")
    assert json.loads(path.read_text())["seed"] == 7
    again = load_config(tmp_path / "run")
    assert again.seed == 7 and again.optimizer.name == "adam"


def test_config_is_locked_against_new_keys(experiment):
    config = load_config(experiment)
    with pytest.raises(ConfigError):
        apply_overrides(config, ["newkey=1"])
    assert isinstance(config, ml_collections.ConfigDict)
