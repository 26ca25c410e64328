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


def test_missing_file_suggests_the_closest_name(experiment):
    with pytest.raises(InputError, match=rf"^config file not found: {experiment.with_name('exp2.py')} "
                                         rf"\(did you mean {experiment}\?\)$"):
        load_config(experiment.with_name("exp2.py"))


def _error_lines(path, source: str) -> list[str]:
    """Writes `source` to `path` and loads it: the InputError's lines, without Python's `^^^`
    marker lines (their shape varies by Python version)."""
    path.write_text(source)
    with pytest.raises(InputError) as raised:
        load_config(path)
    return [line for line in str(raised.value).splitlines() if line.strip(" ^~")]


def test_error_in_get_config_shows_the_config_files_frames_only(tmp_path):
    helper = tmp_path / "exp_helpers.py"
    helper.write_text("def lr():\n    raise ValueError('lr must be set')\n")
    path = tmp_path / "exp.py"
    source = ("import sys\nsys.path.insert(0, %r)\nimport exp_helpers\n\n\n"
              "def get_config():\n    return exp_helpers.lr()\n" % str(tmp_path))
    assert _error_lines(path, source) == [
        f"config file {path}: get_config() raised ValueError: lr must be set",
        f'  File "{path}", line 7, in get_config',
        "    return exp_helpers.lr()",
        f'  File "{helper}", line 2, in lr',
        "    raise ValueError('lr must be set')"]


def test_error_while_executing_the_config_file(tmp_path):
    path = tmp_path / "exp.py"
    assert _error_lines(path, "import ml_collections\nfrom no_such_module import thing\n") == [
        f"config file {path}: ModuleNotFoundError: No module named 'no_such_module'",
        f'  File "{path}", line 2, in <module>',
        "    from no_such_module import thing"]


def test_syntax_error_names_file_and_line(tmp_path):
    path = tmp_path / "exp.py"
    lines = _error_lines(path, "def get_config():\n    return dict(lr=1e-3\n")
    assert lines[0].startswith(f"config file {path}: SyntaxError: ")
    assert lines[1:] == [f'  File "{path}", line 2', "    return dict(lr=1e-3"]


def test_a_config_file_raising_a_gnntrack_error_keeps_its_message(tmp_path):
    path = tmp_path / "exp.py"
    path.write_text("from gnntrack.config import load_config\n\n\n"
                    "def get_config():\n    return load_config('missing_base.py')\n")
    with pytest.raises(InputError, match=r"^config file not found: missing_base.py$"):
        load_config(path)


def test_malformed_json_config_names_file_and_line(tmp_path):
    path = tmp_path / "config.json"
    path.write_text('{"seed": 1,\n "lr": }\n')
    with pytest.raises(InputError, match=rf"^{path}: not valid JSON \(line 2, column 8: Expecting value\)"):
        load_config(tmp_path)


# --- named groups (model.name swaps the model group) and imports ---------------------------------

SMOKE = __import__("pathlib").Path(__file__).resolve().parents[1] / "experiments" / "smoke.py"


@pytest.mark.parametrize("order", ["name_first", "name_last"])
def test_model_name_override_swaps_the_group_in_either_order(order):
    # the segment classifier's leftover keys used to make the interaction network fail
    overrides = ["--config.model.name=interaction_network", "--config.model.edge_out=8"]
    config = load_config(SMOKE, overrides if order == "name_first" else overrides[::-1])
    model = config.model
    assert model.name == "interaction_network" and model.edge_out == 8
    assert "impl" not in model and "edge_layers" not in model  # the old model's keys are gone
    assert model.hidden == 8      # smoke.py set it away from the segment classifier's default: kept
    assert model.message == "sum_incoming"  # left at the old model's default: the new default
    from gnntrack.train.defaults import validate_config

    validate_config(config)


def test_an_unknown_model_name_override_names_the_known_models():
    with pytest.raises(ConfigError, match="unknown model 'nope'.*available: .*interaction_network"):
        load_config(SMOKE, ["--config.model.name=nope"])


PLUGIN = '''
import flax.linen as nn
import ml_collections
from gnntrack.nn import register_model

def default_config():
    return ml_collections.ConfigDict(dict(name="plugin_edge_mlp", hidden=4))

@register_model("plugin_edge_mlp", default_config)
class PluginEdgeMLP(nn.Module):
    hidden: int = 4

    @nn.compact
    def __call__(self, graph, train=False):
        x = nn.tanh(nn.Dense(self.hidden)(graph.nodes))
        pair = x[graph.senders] + x[graph.receivers]
        return nn.Dense(1)(pair)[:, 0]
'''

PLUGIN_EXPERIMENT = f'''
import runpy
smoke = runpy.run_path({str(SMOKE)!r})

def get_config():
    config = smoke["get_config"]()
    config.imports = ("plugins/edge_mlp.py",)
    return config
'''


def write_plugin_experiment(root):
    """An experiment file in `root` importing a model registered in `root`/plugins/edge_mlp.py."""
    (root / "plugins").mkdir(parents=True, exist_ok=True)
    (root / "plugins" / "edge_mlp.py").write_text(PLUGIN)
    (root / "exp.py").write_text(PLUGIN_EXPERIMENT)
    return root / "exp.py"


def test_imports_resolve_relative_to_the_experiment_and_are_stored_absolute(tmp_path, monkeypatch):
    exp = write_plugin_experiment(tmp_path / "project")
    monkeypatch.chdir(tmp_path)  # not the experiment's directory
    config = load_config(exp, ["--config.model.name=plugin_edge_mlp", "--config.model.hidden=6"])
    plugin = str((tmp_path / "project" / "plugins" / "edge_mlp.py").resolve())
    assert list(config.imports) == [plugin]
    assert config.model.to_dict() == {"name": "plugin_edge_mlp", "hidden": 6}
    save_config(config, tmp_path / "run")
    assert json.loads((tmp_path / "run" / "config.json").read_text())["imports"] == [plugin]
    assert load_config(tmp_path / "run").model.hidden == 6


def test_a_missing_import_is_a_config_error_naming_it(tmp_path):
    exp = write_plugin_experiment(tmp_path)
    with pytest.raises(ConfigError, match=r"config key 'imports': file not found: .*nothere\.py"):
        load_config(exp, ["--config.imports=['nothere.py']"])
    with pytest.raises(ConfigError, match="config key 'imports': no module named 'no_such_pkg.models'"):
        load_config(exp, ["--config.imports=['no_such_pkg.models']"])


def test_an_error_in_an_imported_file_shows_its_line(tmp_path):
    exp = write_plugin_experiment(tmp_path)
    (tmp_path / "broken.py").write_text("x = 1\nraise RuntimeError('plugin broke')\n")
    with pytest.raises(InputError, match=r"imported file .*broken\.py: RuntimeError: plugin broke"):
        load_config(exp, ["--config.imports=['broken.py']"])


def test_task_name_swaps_the_task_group_and_needs_a_model_with_its_head():
    from gnntrack.train.defaults import validate_config

    config = load_config(SMOKE, ["--config.task.n_regression=2", "--config.task.name=node",
                                 "--config.model.name=graph_net"])
    assert config.task.to_dict() == {"name": "node", "target": "noise", "n_classes": 2, "n_regression": 2}
    validate_config(config)
    with pytest.raises(ConfigError, match="task 'node' needs a model with a node head.*model.name=graph_net"):
        validate_config(load_config(SMOKE, ["--config.task.name=node"]))
    with pytest.raises(ConfigError, match="unknown task 'jets'"):
        load_config(SMOKE, ["--config.task.name=jets"])


def test_validating_a_rebuilt_config_imports_its_plugins(tmp_path, monkeypatch):
    # study subprocesses rebuild the config from JSON / a dict and validate it before building
    import gnntrack.config
    import gnntrack.nn.registry
    from gnntrack.config import config_to_dict
    from gnntrack.train.defaults import validate_config

    config = load_config(write_plugin_experiment(tmp_path), ["--config.model.name=plugin_edge_mlp"])
    rebuilt = ml_collections.ConfigDict(json.loads(json.dumps(config_to_dict(config))))
    monkeypatch.setattr(gnntrack.config, "_IMPORTED", set())
    monkeypatch.delitem(gnntrack.nn.registry._MODELS, "plugin_edge_mlp")
    validate_config(rebuilt)
    assert "plugin_edge_mlp" in gnntrack.nn.registry.available_models()
