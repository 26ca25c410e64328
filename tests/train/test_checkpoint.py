"""Checkpoint facade: round trip, keep-N + best retention, restore after reopening."""

import numpy as np
import pytest

from gnntrack.errors import GnnTrackError
from gnntrack.train.checkpoint import Checkpointer


def _state(v: float):
    return {"params": {"w": np.full((2, 3), v, np.float32), "b": np.arange(3, dtype=np.float32) * v},
            "step": np.int32(v), "opt": (np.zeros(4, np.float32) + v, np.int32(7))}


def test_round_trip_is_bitwise(tmp_path):
    rng = np.random.default_rng(0)
    state = {"w": rng.normal(size=(5, 7)).astype(np.float32), "k": np.array([3, 4], np.uint32)}
    with Checkpointer(tmp_path / "ck", keep=2) as ck:
        ck.save(10, state, {"epoch": 1, "ladder": {"buckets": [[8, 64]]}})
        restored, meta = ck.restore(target=state)
    assert meta == {"epoch": 1, "ladder": {"buckets": [[8, 64]]}}
    for key in state:
        assert restored[key].dtype == state[key].dtype
        np.testing.assert_array_equal(restored[key], state[key])


def test_keep_latest_n_plus_best(tmp_path):
    # f1 per step; None = a checkpoint taken between evaluations (no metrics)
    f1 = {1: 0.5, 2: None, 3: 0.9, 4: 0.1, 5: None, 6: 0.2, 7: 0.3}
    ck = Checkpointer(tmp_path / "ck", keep=2, best_metric="val_f1", best_mode="max")
    for step, value in f1.items():
        ck.save(step, _state(step), {"step": step}, None if value is None else {"val_f1": value})
    assert ck.all_steps() == [3, 6, 7]  # two latest + best (step 3)
    assert ck.best_step() == 3
    assert ck.latest_step() == 7
    ck.close()
    # reopening sees the same checkpoints and the same best
    ck = Checkpointer(tmp_path / "ck", keep=2, best_metric="val_f1", best_mode="max")
    assert ck.all_steps() == [3, 6, 7] and ck.best_step() == 3
    state, meta = ck.restore(3, target=_state(0))
    assert meta == {"step": 3}
    np.testing.assert_array_equal(state["params"]["w"], np.full((2, 3), 3, np.float32))
    assert isinstance(state["opt"], tuple)
    ck.close()


def test_best_min_mode_and_nan_never_best(tmp_path):
    ck = Checkpointer(tmp_path / "ck", keep=1, best_metric="val_loss", best_mode="min")
    for step, loss in ((1, 0.3), (2, 0.1), (3, float("nan")), (4, 0.2)):
        ck.save(step, _state(step), {}, {"val_loss": loss})
    assert ck.best_step() == 2
    assert ck.all_steps() == [2, 4]
    ck.close()


def test_no_checkpoint_is_a_clear_error(tmp_path):
    with Checkpointer(tmp_path / "empty", keep=1) as ck:
        assert ck.latest_step() is None and ck.best_step() is None
        with pytest.raises(GnnTrackError, match="no checkpoint"):
            ck.restore()
    with pytest.raises(GnnTrackError, match="keep_checkpoints"):
        Checkpointer(tmp_path / "bad", keep=0)


def test_checkpoints_between_evaluations_do_not_warn(tmp_path, caplog):
    """A checkpoint without metrics is normal (between evaluations): no orbax warning per save."""
    import logging

    with caplog.at_level(logging.WARNING):
        with Checkpointer(tmp_path / "ck", keep=2, best_metric="val_f1") as ck:
            ck.save(1, _state(1.0), {}, None)
            ck.save(2, _state(2.0), {}, {"val_f1": 0.5})
            assert ck.all_steps() == [1, 2]
    assert not [r for r in caplog.records if "metrics" in r.getMessage()]
