"""Kill-and-resume gives bitwise the same state as an uninterrupted run (CPU, 2 devices)."""

from pathlib import Path

import jax
import numpy as np
import pytest

from gnntrack.config import load_config
from gnntrack.train.checkpoint import Checkpointer
from gnntrack.train.loop import train_and_evaluate
from gnntrack.train.writers import read_metrics

SMOKE = Path(__file__).resolve().parents[2] / "experiments" / "smoke.py"


pytestmark = pytest.mark.usefixtures("compilation_cache")  # tests/train/conftest.py


def _config(cache_dir):
    config = load_config(SMOKE, [f"data.cache_dir={cache_dir}", "parallel.n_devices=2",
                                 "train.eval_every=0", "train.checkpoint_every=2",
                                 "train.keep_checkpoints=5", "train.tensorboard=False"])
    return config


def _final_state(workdir):
    with Checkpointer(Path(workdir) / "checkpoints", keep=5) as ck:
        state, meta = ck.restore(6)
    return state, meta


def test_kill_and_resume_is_bitwise_identical(tmp_path):
    cache = tmp_path / "cache"
    full = train_and_evaluate(_config(cache), tmp_path / "full")
    assert full["steps"] == 6 and not full["interrupted"]

    # "kill" after 3 steps: checkpoints exist at step 2 only, step 3 is lost and recomputed
    part = train_and_evaluate(_config(cache), tmp_path / "resumed", stop_after_steps=3)
    assert part["interrupted"] and part["steps"] == 3
    with Checkpointer(tmp_path / "resumed" / "checkpoints", keep=5) as ck:
        assert ck.latest_step() == 2
    resumed = train_and_evaluate(_config(cache), tmp_path / "resumed")
    assert resumed["resumed_from"] == 2 and resumed["steps"] == 6

    a, meta_a = _final_state(tmp_path / "full")
    b, meta_b = _final_state(tmp_path / "resumed")
    leaves_a, tree_a = jax.tree_util.tree_flatten(a)
    leaves_b, tree_b = jax.tree_util.tree_flatten(b)
    assert tree_a == tree_b
    for x, y in zip(leaves_a, leaves_b):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))  # bitwise, params and optimizer
    assert meta_a["ladder"] == meta_b["ladder"]
    # same data order: identical per-step train losses, each step logged exactly once
    losses = lambda w: [(r["step"], r["loss"]) for r in read_metrics(Path(w) / "metrics.jsonl") if "loss" in r]
    assert losses(tmp_path / "full") == losses(tmp_path / "resumed")
    assert [s for s, _ in losses(tmp_path / "resumed")] == [1, 2, 3, 4, 5, 6]
    assert resumed["test_f1"] == full["test_f1"]
