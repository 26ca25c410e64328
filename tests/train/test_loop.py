"""The training loop: run-directory contents, checkpoint retention, NaN stop, early stop."""

import json
import math
from pathlib import Path

import jax
import numpy as np
import pytest

from gnntrack.config import load_config
from gnntrack.errors import GnnTrackError
from gnntrack.train.checkpoint import Checkpointer
from gnntrack.train.loop import config_differences, load_scores, train_and_evaluate
from gnntrack.train.writers import read_metrics

SMOKE = Path(__file__).resolve().parents[2] / "experiments" / "smoke.py"
TRAIN_KEYS = {"step", "epoch", "loss", "loss_min", "loss_max", "lr", "grad_norm", "utilisation",
              "n_compiled_shapes", "edges_per_s", "graphs_per_s", "steps_per_s", "wall_s"}
VAL_KEYS = {"step", "val_loss", "val_accuracy", "val_precision", "val_recall", "val_f1", "val_auc",
            "n_val_edges", "val_thresholds", "eval_s"}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


pytestmark = pytest.mark.usefixtures("compilation_cache")  # tests/train/conftest.py


def test_run_directory_contents_and_retention(tmp_path, cache, capsys):
    # through the CLI: steps 6, eval every 3, checkpoint every 2, keep 2 latest + best by val_f1
    from gnntrack.cli import main

    assert main(["train", "--config", str(SMOKE), "--workdir", str(tmp_path),
                 f"--config.data.cache_dir={cache}"]) == 0
    assert "test (held-out events)" in capsys.readouterr().out
    result = json.loads((tmp_path / "result.json").read_text())
    names = {p.name for p in tmp_path.iterdir()}
    assert {"config.json", "metrics.jsonl", "tensorboard", "checkpoints", "result.json",
            "test_scores.npz", "report.md", "loss.png", "roc.png"} <= names
    assert json.loads((tmp_path / "config.json").read_text())["train"]["steps"] == 6
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))

    records = read_metrics(tmp_path / "metrics.jsonl")
    train = [r for r in records if "loss" in r]
    val = [r for r in records if "val_f1" in r]
    assert [r["step"] for r in train] == [1, 2, 3, 4, 5, 6]
    assert all(TRAIN_KEYS <= set(r) for r in train)
    assert all(0 < r["utilisation"] <= 1 and r["n_compiled_shapes"] == 1 for r in train)
    assert all(r["loss_min"] <= r["loss"] <= r["loss_max"] and math.isfinite(r["loss"]) for r in train)
    assert [r["step"] for r in val] == [3, 6] and all(VAL_KEYS <= set(r) for r in val)
    assert set(val[0]["val_thresholds"]) == {"0.3", "0.5", "0.7"}
    test = [r for r in records if "test_f1" in r]
    assert len(test) == 1 and test[0]["step"] == 6

    # keep-N + best: the two latest (4, 6) plus the best validation step (ties -> later)
    f1 = {r["step"]: r["val_f1"] for r in val}
    best = 6 if f1[6] >= f1[3] else 3
    with Checkpointer(tmp_path / "checkpoints", keep=2, best_metric="val_f1") as ck:
        assert set(ck.all_steps()) == {4, 6, best}
        assert ck.best_step() == best
    assert result["best_step"] == best and result["steps"] == 6
    assert result["n_compiled_shapes"] == 1 and 0 < result["utilisation"] <= 1

    # test scores: one score per real edge of the test graphs, probabilities
    scores = load_scores(tmp_path / "test_scores.npz")
    assert scores["scores"].shape == scores["labels"].shape == (result["n_test_edges"],)
    assert scores["graph_offsets"][-1] == result["n_test_edges"]
    assert np.all((scores["scores"] >= 0) & (scores["scores"] <= 1))
    assert set(result["test_thresholds"]) == {"0.3", "0.5", "0.7"}


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, cache, monkeypatch):
    # fault injection: from the 5th step on the step returns NaN loss and NaN parameters
    import jax.numpy as jnp

    import gnntrack.train.step as step_module

    real_make_train_step = step_module.make_train_step

    def poisoned_make_train_step(*args, **kwargs):
        inner = real_make_train_step(*args, **kwargs)

        def step(state, batch):
            new_state, metrics = inner(state, batch)
            bad = state.step >= 4
            params = jax.tree_util.tree_map(lambda p: jnp.where(bad, jnp.nan, p), new_state.params)
            metrics = {**metrics, "loss": jnp.where(bad, jnp.nan, metrics["loss"])}
            return new_state.replace(params=params), metrics
        return step

    monkeypatch.setattr(step_module, "make_train_step", poisoned_make_train_step)
    config = load_config(SMOKE, [f"data.cache_dir={cache}", "train.checkpoint_every=3",
                                 "train.eval_every=0", "train.log_every=2", "train.tensorboard=False"])
    with pytest.raises(GnnTrackError, match=r"non-finite loss \(nan\) at step 5 of 6.*step 3"):
        train_and_evaluate(config, tmp_path)
    with Checkpointer(tmp_path / "checkpoints", keep=2) as ck:
        assert ck.all_steps() == [3]
        state, meta = ck.restore(3)
    assert meta["step"] == 3
    assert all(np.isfinite(x).all() for x in jax.tree_util.tree_leaves(state["params"]))
    steps = [r["step"] for r in read_metrics(tmp_path / "metrics.jsonl") if "loss" in r]
    assert steps == [2, 3, 4]  # logged at log_every and checkpoints; nothing from the NaN window
    assert not (tmp_path / "result.json").exists()


def test_non_finite_parameters_are_never_checkpointed():
    from gnntrack.train.loop import _all_finite

    assert _all_finite({"a": np.ones(3, np.float32), "n": np.int32(2)})
    assert not _all_finite({"a": np.array([1.0, np.inf], np.float32)})


def test_report_fn_stops_early(tmp_path, cache):
    config = load_config(SMOKE, [f"data.cache_dir={cache}", "train.eval_every=2",
                                 "train.checkpoint_every=0", "train.tensorboard=False"])
    seen = []

    def report(step, metrics):
        seen.append((step, sorted(k for k in metrics if k.startswith("val_"))[:3]))
        return step >= 4

    result = train_and_evaluate(config, tmp_path, report_fn=report)
    assert [s for s, _ in seen] == [2, 4]
    assert seen[0][1] == ["val_accuracy", "val_auc", "val_f1"]
    assert result["stopped_early"] and result["steps"] == 4
    with Checkpointer(tmp_path / "checkpoints", keep=2) as ck:
        assert ck.latest_step() == 4


def test_a_target_metric_stops_the_run_after_its_checkpoint_and_profile_steps_are_traced(tmp_path, cache):
    # val_loss <= 100 holds at the first evaluation (step 2) for any untrained model
    config = load_config(SMOKE, [f"data.cache_dir={cache}", "train.eval_every=2", "train.checkpoint_every=0",
                                 "train.tensorboard=False", "train.target_metric=val_loss",
                                 "train.target_value=100.0", "train.best_mode=min", "train.best_metric=val_loss",
                                 "train.profile_steps=(1, 2)"])
    result = train_and_evaluate(config, tmp_path)
    assert result["stopped_early"] and result["stop_reason"] == "target" and result["steps"] == 2
    assert "test_f1" in result  # a run stopped at its target is still tested
    with Checkpointer(tmp_path / "checkpoints", keep=2) as ck:
        assert ck.latest_step() == 2
    assert list((tmp_path / "profile").rglob("*.xplane.pb"))


def test_config_differences_ignores_resume_mutable_keys():
    old = {"seed": 0, "train": {"steps": 5, "log_every": 1}, "model": {"hidden": 8}}
    new = {"seed": 0, "train": {"steps": 9, "log_every": 2}, "model": {"hidden": 16}}
    assert config_differences(old, new) == ["model.hidden"]


def test_noise_scale_is_logged_from_the_step_gradient_norms(tmp_path, cache):
    """On two devices every train record carries B_simple, and it is exactly the EMA tracker fed
    with the per-step gradient norms the same records log (log_every=1: one step per record)."""
    from gnntrack.train.noise_scale import NoiseScaleTracker, step_measurement

    config = load_config(SMOKE, [f"data.cache_dir={cache}", "parallel.n_devices=2", "train.eval_every=0",
                                 "train.checkpoint_every=0", "train.tensorboard=False",
                                 "train.noise_scale_decay=0.5"])
    train_and_evaluate(config, tmp_path)
    train = [r for r in read_metrics(tmp_path / "metrics.jsonl") if "lr" in r]
    assert len(train) == 6
    tracker = NoiseScaleTracker(decay=0.5)
    for r in train:
        measured = step_measurement(r)
        assert measured is not None and measured[3] > measured[2] > 0  # global batch > per-device batch
        expected = tracker.update(*measured)
        if math.isnan(expected):
            assert math.isnan(r["b_simple_edges"])
        else:
            assert r["b_simple_edges"] == pytest.approx(expected, rel=1e-9)
            assert abs(r["b_simple_graphs"]) < abs(r["b_simple_edges"])  # a graph holds many edges
