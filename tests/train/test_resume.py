"""Kill-and-resume gives bitwise the same state as an uninterrupted run (CPU, 2 devices), also
when the newest checkpoint is damaged (fallback to the one before) or the kill came after the
final checkpoint (the end of the run is recomputed, nothing duplicated).

What is bitwise and why: every run here is the same program on the same shapes on the same
machine, and the batch order is a pure function of (seed, epoch, step); only the process stops
and starts again, so parameters, optimizer state, per-step losses and test metrics agree exactly.
"""

import json
import shutil
from pathlib import Path

import jax
import numpy as np
import pytest

from gnntrack.config import load_config
from gnntrack.train.checkpoint import Checkpointer
from gnntrack.train.loop import RESULT_FILE_NAME, train_and_evaluate
from gnntrack.train.writers import read_metrics
from tests.train.checkpoint_damage import damage

SMOKE = Path(__file__).resolve().parents[2] / "experiments" / "smoke.py"
TIMINGS = {"seconds", "train_seconds", "eval_s"}  # wall-clock keys of result.json


pytestmark = pytest.mark.usefixtures("compilation_cache")  # tests/train/conftest.py


def _config(cache_dir):
    config = load_config(SMOKE, [f"data.cache_dir={cache_dir}", "parallel.n_devices=2",
                                 "train.eval_every=0", "train.checkpoint_every=2",
                                 "train.keep_checkpoints=5", "train.tensorboard=False"])
    return config


@pytest.fixture(scope="module")
def full(tmp_path_factory, compilation_cache):
    """An uninterrupted 6-step run: (its run directory, the data cache, its result)."""
    root = tmp_path_factory.mktemp("resume")
    result = train_and_evaluate(_config(root / "cache"), root / "full")
    assert result["steps"] == 6 and not result["interrupted"]
    return root / "full", root / "cache", result


def _final_state(workdir):
    with Checkpointer(Path(workdir) / "checkpoints", keep=5) as ck:
        state, meta = ck.restore(6)
    return state, meta


def _assert_same_final_state(a_dir, b_dir):
    a, meta_a = _final_state(a_dir)
    b, meta_b = _final_state(b_dir)
    leaves_a, tree_a = jax.tree_util.tree_flatten(a)
    leaves_b, tree_b = jax.tree_util.tree_flatten(b)
    assert tree_a == tree_b
    for x, y in zip(leaves_a, leaves_b):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))  # bitwise, params and optimizer
    assert meta_a["ladder"] == meta_b["ladder"]


def _losses(workdir):
    return [(r["step"], r["loss"]) for r in read_metrics(Path(workdir) / "metrics.jsonl") if "loss" in r]


def test_kill_and_resume_is_bitwise_identical(full, tmp_path):
    full_dir, cache, full_result = full
    # "kill" after 3 steps: checkpoints exist at step 2 only, step 3 is lost and recomputed
    part = train_and_evaluate(_config(cache), tmp_path / "resumed", stop_after_steps=3)
    assert part["interrupted"] and part["steps"] == 3
    with Checkpointer(tmp_path / "resumed" / "checkpoints", keep=5) as ck:
        assert ck.latest_step() == 2
    resumed = train_and_evaluate(_config(cache), tmp_path / "resumed")
    assert resumed["resumed_from"] == 2 and resumed["steps"] == 6

    _assert_same_final_state(full_dir, tmp_path / "resumed")
    # same data order: identical per-step train losses, each step logged exactly once
    assert _losses(full_dir) == _losses(tmp_path / "resumed")
    assert [s for s, _ in _losses(tmp_path / "resumed")] == [1, 2, 3, 4, 5, 6]
    assert resumed["test_f1"] == full_result["test_f1"]
    # the padding statistics travel in the checkpoints: the resumed run reports the whole run's
    assert (resumed["utilisation"], resumed["n_compiled_shapes"]) == (full_result["utilisation"],
                                                                      full_result["n_compiled_shapes"])


def test_resume_falls_back_past_a_damaged_checkpoint(full, tmp_path, capsys):
    full_dir, cache, full_result = full
    run = tmp_path / "damaged"
    train_and_evaluate(_config(cache), run, stop_after_steps=5)  # checkpoints at steps 2 and 4
    damage(run / "checkpoints" / "4", "random_data")
    capsys.readouterr()
    resumed = train_and_evaluate(_config(cache), run)
    err = capsys.readouterr().err
    assert resumed["resumed_from"] == 2 and resumed["steps"] == 6
    skipped = [line for line in err.splitlines() if "skipped damaged checkpoint 4" in line]
    assert len(skipped) == 1 and "resuming from step 2" in skipped[0]
    assert (run / "checkpoints.damaged" / "4" / "state").is_dir()  # kept aside, out of the way

    _assert_same_final_state(full_dir, run)
    assert _losses(full_dir) == _losses(run)
    assert resumed["test_f1"] == full_result["test_f1"]


def test_a_kill_after_the_final_checkpoint_recomputes_the_same_results(full, tmp_path):
    full_dir, cache, full_result = full
    run = tmp_path / "killed_at_the_end"
    shutil.copytree(full_dir, run)
    # killed after the final checkpoint and the test records, before result.json was written
    (run / RESULT_FILE_NAME).unlink()
    result = train_and_evaluate(_config(cache), run)
    assert result["resumed_from"] == 6 and result["steps"] == 6 and "already_complete" not in result

    stored = json.loads((run / RESULT_FILE_NAME).read_text())
    expected = json.loads((full_dir / RESULT_FILE_NAME).read_text())
    for key in sorted(set(expected) | set(stored)):
        if key not in TIMINGS | {"resumed_from", "data"}:
            assert stored.get(key) == expected.get(key), key  # bitwise: the same checkpoint, scored again
    records = read_metrics(run / "metrics.jsonl")
    assert records == [r for r in read_metrics(full_dir / "metrics.jsonl") if "test_f1" not in r] + [
        r for r in records if "test_f1" in r]
    assert len([r for r in records if "test_f1" in r]) == 1  # recomputed once, not appended again
