"""Checkpoint facade: round trip, keep-N + best retention, restore after reopening, fallback past
damaged checkpoints, shape checks, read-only use and failed writes."""

import errno

import numpy as np
import pytest

from gnntrack.errors import GnnTrackError
from gnntrack.train.checkpoint import (CheckpointError, CheckpointMismatch, Checkpointer, UnreadableCheckpoint,
                                       shape_mismatch)
from tests.train.checkpoint_damage import DAMAGE, damage


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


# --- damaged checkpoints, read-only use, failed writes ---------------------------------------

def _three_checkpoints(directory):
    with Checkpointer(directory, keep=3) as ck:
        for step in (1, 2, 3):
            ck.save(step, _state(step), {"step": step})


@pytest.mark.parametrize("kind", DAMAGE)
def test_a_damaged_latest_checkpoint_is_skipped_for_the_newest_readable(tmp_path, kind):
    _three_checkpoints(tmp_path / "ck")
    damage(tmp_path / "ck" / "3", kind)
    with Checkpointer(tmp_path / "ck", keep=3) as ck:
        restored = ck.restore_newest(target=_state(0))
    assert restored.step == 2 and restored.meta == {"step": 2}
    np.testing.assert_array_equal(restored.state["params"]["w"], np.full((2, 3), 2, np.float32))
    assert [s.step for s in restored.skipped] == [3]
    line = restored.skipped[0].message()
    assert str(tmp_path / "ck" / "3") in line and "\n" not in line and len(line) < 600
    with Checkpointer(tmp_path / "ck", keep=3) as ck:  # asked for by step: one clear error
        with pytest.raises(UnreadableCheckpoint, match="checkpoint 3 in"):
            ck.restore(3, target=_state(0))


def test_no_readable_checkpoint_is_one_clear_error(tmp_path):
    _three_checkpoints(tmp_path / "ck")
    for step, kind in ((1, "missing_state"), (2, "empty_metadata"), (3, "truncated_manifest")):
        damage(tmp_path / "ck" / str(step), kind)
    with Checkpointer(tmp_path / "ck", keep=3) as ck:
        with pytest.raises(CheckpointError) as info:
            ck.restore_newest(target=_state(0))
    message = str(info.value)
    assert "\n" not in message and str(tmp_path / "ck") in message
    assert "3, 2, 1" in message and "--restart" in message


def test_a_target_of_another_shape_or_structure_is_a_mismatch(tmp_path):
    with Checkpointer(tmp_path / "ck", keep=1) as ck:
        ck.save(1, _state(1), {})
        wider = _state(0)
        wider["params"]["w"] = np.zeros((2, 5), np.float32)
        with pytest.raises(CheckpointMismatch, match=r"params/w is \(2, 3\) in the checkpoint but \(2, 5\)"):
            ck.restore(1, target=wider)
        extra = _state(0)
        extra["params"]["v"] = np.zeros(2, np.float32)
        with pytest.raises(CheckpointMismatch, match="params/v is not in the checkpoint"):
            ck.restore_newest(target=extra)  # a mismatch is not damage: no fallback to older steps


def test_shape_mismatch_describes_the_first_difference():
    saved = {"params": {"a": np.zeros((2, 3)), "b": np.zeros(4)}}
    assert shape_mismatch(saved, {"params": {"a": np.zeros((2, 3)), "b": np.zeros(4)}}) is None
    assert shape_mismatch(saved, {"params": {"a": np.zeros((2, 3))}}) == (
        "params/b is in the checkpoint but not in the config's model")
    assert shape_mismatch(saved, {"params": {"a": np.zeros((3, 3)), "b": np.zeros(5)}}) == (
        "params/a is (2, 3) in the checkpoint but (3, 3) for the config (and 1 more difference)")


def test_read_only_use_leaves_a_save_in_progress_alone(tmp_path):
    """`gnntrack evaluate` while training saves: the trainer's temporary directory must survive."""
    _three_checkpoints(tmp_path / "ck")
    in_progress = tmp_path / "ck" / "4.orbax-checkpoint-tmp-1234"
    (in_progress / "state").mkdir(parents=True)
    (in_progress / "state" / "part").write_bytes(b"being written")
    with Checkpointer(tmp_path / "ck", read_only=True) as ck:
        assert ck.all_steps() == [1, 2, 3]
        assert ck.restore_newest().step == 3
        with pytest.raises(GnnTrackError, match="read-only"):
            ck.save(5, _state(5), {})
    assert (in_progress / "state" / "part").read_bytes() == b"being written"
    assert not (tmp_path / "missing").exists()
    with Checkpointer(tmp_path / "missing", read_only=True) as ck:  # reading creates nothing
        assert ck.all_steps() == []
    assert not (tmp_path / "missing").exists()


def _fail_json_writes(monkeypatch, error, after: int = 0):
    """Makes orbax's JSON item writes (the `meta` item) raise `error` after `after` good ones."""
    from orbax.checkpoint._src.handlers import json_checkpoint_handler as jh

    original = jh.JsonCheckpointHandler._save_fn
    calls = {"n": 0}

    async def save_fn(self, x, directory):
        calls["n"] += 1
        if calls["n"] > after:
            raise error
        return await original(self, x, directory)

    monkeypatch.setattr(jh.JsonCheckpointHandler, "_save_fn", save_fn)


@pytest.mark.parametrize("error", [
    OSError(errno.ENOSPC, "No space left on device", "/somewhere/meta"),
    # how tensorstore reports a full disk while writing array data (seen on a full tmpfs)
    ValueError('RESOURCE_EXHAUSTED: Error writing "w/0" in OCDBT database at local file "/x/": Failed '
               'writing: "/x/d/58ed": Failed to write 127601 bytes to file 14: No space left on device '
               "[os_error_code='28']"),
], ids=["oserror", "tensorstore"])
def test_a_full_disk_during_save_is_one_line_and_keeps_earlier_checkpoints(tmp_path, monkeypatch, capsys, error):
    ck = Checkpointer(tmp_path / "ck", keep=3)
    ck.save(1, _state(1), {"step": 1})
    _fail_json_writes(monkeypatch, error)
    with pytest.raises(CheckpointError) as info:
        ck.save(2, _state(2), {"step": 2})
    message = str(info.value)
    assert "\n" not in message and str(tmp_path / "ck") in message and "no space left on device" in message
    assert "step 1" in message  # what is still there
    ck.close()
    monkeypatch.undo()
    assert "Traceback" not in capsys.readouterr().err  # orbax's background-thread reports are dropped
    with Checkpointer(tmp_path / "ck", keep=3) as ck:  # the next run: step 1 restores, step 2 saves
        assert ck.restore_newest(target=_state(0)).step == 1
        ck.save(2, _state(2), {"step": 2})
        assert ck.all_steps() == [1, 2]


def test_event_loop_noise_of_a_failed_read_is_dropped():
    """tensorstore reports callbacks that arrive after orbax closed its event loop as unraisable
    RuntimeErrors, hundreds of tracebacks per damaged checkpoint; the hook drops exactly those."""
    import types

    from gnntrack.train.checkpoint import _drop_closed_loop_reports

    passed_on = []
    hook = _drop_closed_loop_reports(passed_on.append)
    hook(types.SimpleNamespace(exc_value=RuntimeError("Event loop is closed")))
    other = types.SimpleNamespace(exc_value=RuntimeError("something else"))
    hook(other)
    assert passed_on == [other]
