"""The one training loop and its hooks: stop semantics, schedules, targets, telemetry, profiling."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

from gnntrack.errors import ConfigError
from gnntrack.train.hooks import (EvaluationHook, EveryStep, Hook, MetricsHook, NonFinite, ProfileHook,
                                  StopAfterSteps, StopRules, Target, geometric_schedule, is_due, run_loop)


def _counting_step(state, batch):
    return state + batch, {"loss": jnp.float32(1.0 / (state + batch))}


def _epochs(per_epoch):
    return lambda epoch, position: [1] * (per_epoch - position)  # every batch adds 1 to the state


class Seen(Hook):
    def __init__(self):
        self.steps, self.closed = [], False

    def after_step(self, ctx):
        self.steps.append((ctx.step, ctx.epoch))

    def close(self):
        self.closed = True


def test_the_loop_crosses_epochs_and_resumes_mid_epoch():
    seen = Seen()
    state, step, reason = run_loop(_counting_step, 0, _epochs(3), start_step=4, total=8, per_epoch=3, hooks=[seen])
    assert (state, step, reason) == (4, 8, None)
    assert seen.steps == [(5, 1), (6, 1), (7, 2), (8, 2)] and seen.closed


def test_a_stop_lets_later_hooks_finish_the_step_and_now_skips_them():
    after = Seen()

    class StopAt3(Hook):
        def after_step(self, ctx):
            if ctx.step == 3:
                ctx.stop("target")

    _, step, reason = run_loop(_counting_step, 0, _epochs(10), start_step=0, total=10, per_epoch=10,
                               hooks=[StopAt3(), after])
    assert (step, reason) == (3, "target") and after.steps[-1] == (3, 0)    # the checkpoint still runs
    after = Seen()
    _, step, reason = run_loop(_counting_step, 0, _epochs(10), start_step=0, total=10, per_epoch=10,
                               hooks=[StopAfterSteps(2), after])
    assert (step, reason) == (2, "interrupted") and after.steps == [(1, 0)]  # a kill saves nothing


def test_hooks_are_closed_when_a_hook_raises():
    seen = Seen()

    def boom(ctx):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        run_loop(_counting_step, 0, _epochs(5), start_step=0, total=5, per_epoch=5, hooks=[seen, EveryStep(boom)])
    assert seen.closed


def test_schedules():
    assert [s for s in range(1, 11) if is_due(s, 4, 10)] == [4, 8, 10]
    assert [s for s in range(1, 11) if is_due(s, 0, 10)] == [10]
    assert geometric_schedule(10, 0.5, 1) == [1, 2, 3, 4, 6, 9, 10]
    steps = geometric_schedule(1000, 0.05, 1)
    assert steps[-1] == 1000 and all(b > a for a, b in zip(steps, steps[1:]))
    gaps = np.diff(steps)[-5:] / np.array(steps[-6:-1])
    assert np.all(gaps <= 0.06)                                  # relative resolution ~ eval_rel


def _rows_of(hook_kwargs, losses, due_every=2):
    emitted = []
    metrics = MetricsHook(lambda s: s % due_every == 0, lambda ctx, w: emitted.append(w), noise_decay=0.9,
                          sizes=lambda batch: (10, 16, 2), **hook_kwargs)
    step_fn = lambda state, batch: (state + 1, {"loss": jnp.float32(losses[state])})  # noqa: E731
    _, step, reason = run_loop(step_fn, 0, lambda e, p: [None] * (len(losses) - p), start_step=0,
                               total=len(losses), per_epoch=len(losses), hooks=[metrics])
    return emitted, step, reason


def test_metrics_are_fetched_in_windows_with_their_batch_sizes():
    emitted, step, reason = _rows_of({}, [4.0, 3.0, 2.0, 1.0, 0.5])
    assert [[s for s, _ in w.rows] for w in emitted] == [[1, 2], [3, 4], [5]]   # the last step always
    assert [m["loss"] for _, m in emitted[1].rows] == [2.0, 1.0]
    assert (emitted[0].real_edges, emitted[0].padded_edges, emitted[0].graphs) == (20, 32, 4)


def test_a_nan_loss_raises_or_stops_as_diverged():
    with pytest.raises(NonFinite) as info:
        _rows_of({}, [4.0, 3.0, math.nan, 1.0])
    assert info.value.step == 3
    emitted, step, reason = _rows_of({"on_nonfinite": "stop"}, [4.0, 3.0, math.nan, 1.0])
    # steps 1-2 were fetched before; the window of steps 3-4 keeps nothing from the first NaN on
    assert (step, reason) == (4, "diverged") and emitted[-1].rows == []


def test_stop_rules_track_the_best_and_stop_at_target_patience_or_pruner():
    values = iter([0.5, 0.7, 0.7, 0.6, 0.95])
    rules = StopRules(Target("val_f1", 0.9, "max"), patience=3)
    validation = EvaluationHook(lambda s: True, lambda ctx: {"val_f1": next(values)}, then=[rules])
    _, step, reason = run_loop(_counting_step, 0, _epochs(10), start_step=0, total=10, per_epoch=10,
                               hooks=[validation])
    assert (step, reason) == (5, "target") and rules.reached_step == 5 and rules.best_step == 5
    values = iter([0.5, 0.7, 0.7, 0.6, 0.65, 0.95])
    rules = StopRules(Target("val_f1", 0.9, "max"), patience=3)
    validation = EvaluationHook(lambda s: True, lambda ctx: {"val_f1": next(values)}, then=[rules])
    _, step, reason = run_loop(_counting_step, 0, _epochs(10), start_step=0, total=10, per_epoch=10,
                               hooks=[validation])
    assert (step, reason) == (5, "patience") and rules.best_step == 2   # a tie is no improvement
    rules = StopRules(None, report_fn=lambda step, metrics: step == 2)
    validation = EvaluationHook(lambda s: True, lambda ctx: {"val_f1": 0.1}, then=[rules])
    _, step, reason = run_loop(_counting_step, 0, _epochs(10), start_step=0, total=10, per_epoch=10,
                               hooks=[validation])
    assert (step, reason) == (2, "pruned")


def test_target_reached_and_gap():
    t = Target("val_loss", 0.2, "min")
    assert t.reached(0.19) and not t.reached(math.nan) and t.gap(0.3) == pytest.approx(0.5)
    with pytest.raises(ConfigError, match="'max' or 'min'"):
        Target("val_f1", 0.9, "up")


def test_the_profile_hook_writes_a_trace_of_its_steps(tmp_path):
    run_loop(_counting_step, 0, _epochs(4), start_step=0, total=4, per_epoch=4,
             hooks=[ProfileHook(2, 3, tmp_path / "profile")])
    assert list((tmp_path / "profile").rglob("*.xplane.pb"))
    with pytest.raises(ConfigError, match="profile_steps"):
        ProfileHook(3, 2, tmp_path)
