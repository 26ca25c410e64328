"""Every sweep experiment under experiments/sweeps/ is a valid study: its search space parses
against its base run, every candidate value gives a valid run config, and the models of the
space's corners build."""

from pathlib import Path

import pytest

from gnntrack.config import load_config
from gnntrack.nn import build_model
from gnntrack.studies import search_space as ss
from gnntrack.studies.sweep import SweepSettings

SWEEPS = sorted((Path(__file__).resolve().parents[2] / "experiments" / "sweeps").glob("*.py"))


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.stem)
def test_sweep_experiment_is_a_valid_study(path):
    config = load_config(path)
    SweepSettings.from_config(config.sweep)                    # the sweep keys themselves
    base = load_config(f"{path}:base")
    specs = ss.parse_search_space(config.sweep.space, base)   # also validates every candidate's run config
    assert {s.key for s in specs} == {e["key"] for e in config.sweep.space}
    # the candidates the sweep's own check tries: bounds, choices, grid values
    lowest = {s.key: ss._candidates(s)[0] for s in specs}
    highest = {s.key: ss._candidates(s)[-1] for s in specs}
    for corner in (lowest, highest):
        trial = ss.apply_params(base, corner)
        assert all(trial[k.split(".")[0]][k.split(".")[1]] == v for k, v in corner.items())
        assert build_model(trial.model) is not None


def test_pflow_sweep_prunes_with_asha_on_the_validation_loss():
    config = load_config(Path(__file__).resolve().parents[2] / "experiments" / "sweeps" / "pflow.py")
    assert (config.sweep.sampler, config.sweep.pruner) == ("tpe", "asha")
    assert (config.sweep.metric, config.sweep.direction) == ("val_loss", "minimize")
    assert config.train.eval_every < config.train.steps   # ASHA's rungs are the validations
