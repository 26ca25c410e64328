"""Search spaces over named groups: a categorical over `model.name` builds valid trial configs,
also for a model that only a file listed in `imports` registers (as in a sweep worker)."""

import copy
import pickle

from gnntrack.config import load_config
from gnntrack.studies import search_space as ss
from gnntrack.train.defaults import validate_config
from tests.test_config import SMOKE, write_plugin_experiment


def test_a_categorical_over_model_name_builds_valid_trial_configs():
    from gnntrack.nn import build_model

    base = load_config(SMOKE)
    specs = ss.parse_search_space([ss.choice("model.name", ["segment_classifier", "interaction_network"]),
                                   ss.int_range("model.hidden", 4, 8, step=4)], base)
    points = ss.grid_points(specs)
    assert len(points) == 4
    for params in points:
        config = ss.apply_params(base, params)
        validate_config(config)
        assert config.model.name == params["model.name"] and config.model.hidden == params["model.hidden"]
        assert build_model(config.model) is not None
    assert "edge_out" not in base.model  # the base is not modified


def test_a_worker_rebuilding_a_trial_config_imports_the_plugin_first(tmp_path, monkeypatch):
    import gnntrack.config
    import gnntrack.nn.registry

    base = load_config(write_plugin_experiment(tmp_path))
    specs = ss.parse_search_space([ss.choice("model.name", ["segment_classifier", "plugin_edge_mlp"])], base)
    payload = pickle.dumps((base, specs))
    # a worker process: the base config arrives pickled, nothing imported or registered yet
    monkeypatch.setattr(gnntrack.config, "_IMPORTED", set())
    monkeypatch.setattr(gnntrack.nn.registry, "_MODELS", copy.copy(gnntrack.nn.registry._MODELS))
    del gnntrack.nn.registry._MODELS["plugin_edge_mlp"]
    worker_base, _ = pickle.loads(payload)
    config = ss.apply_params(worker_base, {"model.name": "plugin_edge_mlp"})
    assert config.model.to_dict() == {"name": "plugin_edge_mlp", "hidden": 8}
    validate_config(config)
