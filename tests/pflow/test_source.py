"""Data source 'pflow': events as edgeless graphs of elements with per-element targets."""

import pytest

from gnntrack.errors import InputError
from gnntrack.nn.registry import default_model_config
from gnntrack.pflow.types import ELEMENT_FEATURES, TARGET_COLUMNS
from gnntrack.tasks import default_task_config
from gnntrack.train.data import prepare_data
from gnntrack.train.defaults import default_config, validate_config
from gnntrack.train.sources import source_settings


def _config(input_dir, n_train=1, n_val=1, n_test=1):
    config = default_config()
    config.data.source = "pflow"
    config.data.input_dir = str(input_dir)
    config.data.n_train, config.data.n_val, config.data.n_test = n_train, n_val, n_test
    config.task = default_task_config("graph")
    config.model = default_model_config("graph_net")
    return config


def test_pflow_source_splits_events_in_order_into_edgeless_graphs(pflow_dir, tmp_path):
    config = _config(pflow_dir)
    validate_config(config)
    assert source_settings(config).to_dict() == {"pileup": 0.0}
    splits = prepare_data(config, tmp_path)
    assert [[g.event_id for g in s] for s in (splits.train, splits.val, splits.test)] == [[0], [1], [2]]
    g = splits.test[0]
    n = g.n_nodes
    assert g.graph.nodes.shape == (n, len(ELEMENT_FEATURES)) and g.n_edges == 0
    assert g.graph.senders.shape == g.graph.receivers.shape == (0,)
    assert g.node_y.shape == (n, len(TARGET_COLUMNS))
    assert (g.particle_id >= 0).all() and splits.info["events_dir"] == str(pflow_dir)


def test_too_few_events_or_no_events_name_the_directory(pflow_dir, tmp_path):
    with pytest.raises(InputError, match=r"3 events.*need 4"):
        prepare_data(_config(pflow_dir, n_train=2), tmp_path)
    with pytest.raises(InputError, match=r"'data.input_dir'.*gnntrack pflow simulate"):
        prepare_data(_config(tmp_path / "nowhere"), tmp_path)


def test_without_input_dir_the_source_simulates_its_events_once_into_the_cache(tmp_path):
    config = _config("")
    splits = prepare_data(config, tmp_path)
    cached = [p.name for p in (tmp_path / "data").iterdir()]
    assert len(cached) == 1 and cached[0].startswith("pflow-")
    assert splits.info["events_dir"] == str(tmp_path / "data" / cached[0])
    again = prepare_data(config, tmp_path)  # read back, not simulated again
    assert [p.name for p in (tmp_path / "data").iterdir()] == cached
    assert (again.test[0].graph.nodes == splits.test[0].graph.nodes).all()
