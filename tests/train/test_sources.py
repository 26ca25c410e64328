"""Data sources as plug-ins: a registered source owns `data.<name>`, unknown ones are named."""

import textwrap

import ml_collections
import pytest

from gnntrack.config import apply_overrides, import_plugins
from gnntrack.errors import ConfigError
from gnntrack.nn.registry import default_model_config
from gnntrack.tasks import default_task_config
from gnntrack.train.data import prepare_data
from gnntrack.train.defaults import default_config, validate_config
from gnntrack.train.sources import available_data_sources, source_settings

PLUGIN = textwrap.dedent('''
    import ml_collections
    from gnntrack.testing import sign_graphs
    from gnntrack.train.data import DataSplits
    from gnntrack.train.sources import register_data_source, source_settings

    def few_signs_config():
        return ml_collections.ConfigDict(dict(n_graphs=6, seed=3))

    @register_data_source("few_signs", default_config=few_signs_config)
    def prepare_few_signs(config, workdir, *, progress=True):
        keys = source_settings(config)
        graphs = sign_graphs(keys.n_graphs, seed=keys.seed)
        return DataSplits(train=graphs[:4], val=graphs[4:5], test=graphs[5:], test_full=None,
                          info={"source": "few_signs", "seed": keys.seed})
''')


def _config(tmp_path, **source_keys):
    (tmp_path / "few_signs_source.py").write_text(PLUGIN)
    config = default_config()
    config.imports = (str(tmp_path / "few_signs_source.py"),)
    config.data.source = "few_signs"
    config.data.few_signs = ml_collections.ConfigDict(source_keys)
    config.task = default_task_config("graph")
    config.model = default_model_config("graph_net")
    return config


def test_a_registered_source_prepares_the_splits_with_its_own_keys(tmp_path):
    config = _config(tmp_path, n_graphs=7)
    validate_config(config)
    assert "few_signs" in available_data_sources()
    assert source_settings(config).to_dict() == {"n_graphs": 7, "seed": 3}  # defaults fill the rest
    splits = prepare_data(config, tmp_path)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (4, 1, 2)
    assert splits.info["source"] == "few_signs"


def test_an_unknown_key_of_a_source_group_is_named(tmp_path):
    config = _config(tmp_path, n_grahps=7)
    with pytest.raises(ConfigError, match=r"data\.few_signs\.n_grahps.*n_graphs"):
        validate_config(config)


def test_an_unknown_source_lists_the_available_ones(tmp_path):
    config = _config(tmp_path)
    import_plugins(config)
    config.data.source = "no_such_source"
    with pytest.raises(ConfigError, match=r"'data.source'.*simulate.*got 'no_such_source'"):
        validate_config(config)


def test_a_source_override_brings_its_group_so_its_keys_can_be_set(tmp_path):
    (tmp_path / "few_signs_source.py").write_text(PLUGIN)
    config = default_config()
    config.task = default_task_config("graph")
    config.model = default_model_config("graph_net")
    apply_overrides(config, [f"--config.imports=('{tmp_path / 'few_signs_source.py'}',)",
                             "--config.data.few_signs.n_graphs=9", "--config.data.source=few_signs"],
                    base_dir=tmp_path)
    assert config.data.few_signs.to_dict() == {"n_graphs": 9, "seed": 3}
    validate_config(config)
