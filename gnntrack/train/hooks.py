"""The training loop, written once, and the hooks that give it everything else.

    state, step, reason = run_loop(step_fn, state, epoch_batches, start_step=0, total=1000,
                                   per_epoch=50, hooks=[progress, metrics, evaluation, checkpoints])

`run_loop` only steps: it takes the batches of each epoch from `epoch_batches(epoch, position)`,
calls `step_fn(state, batch) -> (state, metrics)` and then every hook's `after_step(ctx)` in
order. Everything else — train records and noise-scale telemetry, validation, checkpoints,
stopping at a target metric or by a pruner, a progress bar, a profiler trace — is a hook, so
`gnntrack train` (and quickstart and sweep trials through it) and the steps-to-target runs of the
scaling studies share one loop and differ only in the hooks they pass.

A hook may stop the run with `ctx.stop(reason)`: the remaining hooks of that step still run (a
checkpoint after the evaluation that reached the target), and the loop leaves after them;
`ctx.stop(reason, now=True)` skips the remaining hooks (a simulated kill must not checkpoint).
Every hook's `close()` runs when the loop leaves, also on an error.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from gnntrack.errors import ConfigError
from gnntrack.train.noise_scale import NoiseScaleTracker, step_measurement


@dataclasses.dataclass
class StepContext:
    """What the hooks see after a step: `step` optimizer steps are done in all."""

    step: int
    epoch: int
    total: int
    state: Any
    metrics: Any
    batch: Any
    stop_reason: str | None = None
    stop_now: bool = False

    def stop(self, reason: str, *, now: bool = False) -> None:
        """Leaves the loop after this step (the first reason given is kept)."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self.stop_now = self.stop_now or now


class Hook:
    """Base hook: override what you need."""

    def after_step(self, ctx: StepContext) -> None:
        pass

    def close(self) -> None:
        pass


def run_loop(step_fn: Callable[[Any, Any], tuple[Any, Any]], state: Any,
             epoch_batches: Callable[[int, int], Iterable[Any]], *, start_step: int, total: int,
             per_epoch: int, hooks: Sequence[Hook]) -> tuple[Any, int, str | None]:
    """Steps from `start_step` to `total` (or until a hook stops the run).

    Args:
      step_fn: (state, batch) -> (state, metrics); the compiled, data-parallel train step.
      epoch_batches: (epoch, position) -> the batches of `epoch` from step `position` of it on.
      per_epoch: steps per epoch (the loop's epoch and position of a step).
    Returns:
      (state, steps done in all, the stop reason or None when `total` was reached).
    """
    step, reason = start_step, None
    try:
        while step < total and reason is None:
            epoch, position = divmod(step, per_epoch)
            for batch in epoch_batches(epoch, position):
                state, metrics = step_fn(state, batch)
                step += 1
                ctx = StepContext(step=step, epoch=epoch, total=total, state=state, metrics=metrics,
                                  batch=batch)
                for hook in hooks:
                    hook.after_step(ctx)
                    if ctx.stop_now:
                        break
                reason = ctx.stop_reason
                if reason is not None or step >= total:
                    break
    finally:
        for hook in hooks:
            hook.close()
    return state, step, reason


def is_due(step: int, every: int, last: int) -> bool:
    """True at every `every`-th step (every > 0) and at the last step."""
    return step == last or (every > 0 and step % every == 0)


def geometric_schedule(budget: int, rel: float, min_every: int) -> list[int]:
    """Steps s_{k+1} = s_k + max(min_every, floor(rel s_k)) from s_0 = min_every, and always
    the last step `budget`: a fixed relative resolution of steps-to-target."""
    steps, s = [], max(1, int(min_every))
    while s < budget:
        steps.append(s)
        s += max(int(min_every), int(math.floor(rel * s)), 1)
    steps.append(int(budget))
    return steps


# ---------------------------------------------------------------------------------------------
# Hooks
# ---------------------------------------------------------------------------------------------

class EveryStep(Hook):
    """Calls `fn(ctx)` after every step, or only where `due(step)`."""

    def __init__(self, fn: Callable[[StepContext], None], due: Callable[[int], bool] | None = None):
        self.fn, self.due = fn, due

    def after_step(self, ctx: StepContext) -> None:
        if self.due is None or self.due(ctx.step):
            self.fn(ctx)


class NonFinite(Exception):
    """A non-finite loss (or parameters) at `step`."""

    def __init__(self, step: int, value: float, what: str = "loss"):
        super().__init__(step, value)
        self.step, self.value, self.what = step, value, what


@dataclasses.dataclass
class StepRows:
    """The host metrics of the steps since the last fetch, and their batches' sizes."""

    rows: list[tuple[int, dict[str, float]]]
    real_edges: int
    padded_edges: int
    graphs: int
    seconds: float


def batch_sizes(batch) -> tuple[int, int, int]:
    """(real edges, padded edge slots, real graphs) of a `gnntrack.graphs.batching.Batch`."""
    d, _, e_pad, _ = batch.shape
    return int(np.sum(batch.n_real_edges)), d * e_pad, int(batch.n_graphs)


class MetricsHook(Hook):
    """Collects each step's metrics (device arrays, no sync) and fetches them when `due(step)`:
    one host transfer, a finiteness check, the gradient-noise-scale update (B_simple of
    McCandlish et al. from per-device vs global gradient norms, EMA-smoothed), then `emit(ctx,
    StepRows)`.

    A non-finite loss raises NonFinite (on_nonfinite='raise', before any later hook can
    checkpoint the bad state) or stops the run with reason 'diverged' ('stop')."""

    def __init__(self, due: Callable[[int], bool], emit: Callable[[StepContext, StepRows], None], *,
                 noise_decay: float, sizes: Callable[[Any], tuple[int, int, int]] = batch_sizes,
                 on_nonfinite: str = "raise", clock: Callable[[], float] = time.perf_counter):
        self.due, self.emit, self.sizes, self.on_nonfinite, self.clock = due, emit, sizes, on_nonfinite, clock
        self.noise = NoiseScaleTracker(decay=float(noise_decay))
        self._reset()

    def _reset(self) -> None:
        self.pending: list[tuple[int, Any]] = []
        self.real_edges = self.padded_edges = self.graphs = 0
        self.start = self.clock()

    def after_step(self, ctx: StepContext) -> None:
        import jax

        self.pending.append((ctx.step, ctx.metrics))
        real, padded, graphs = self.sizes(ctx.batch)
        self.real_edges += real
        self.padded_edges += padded
        self.graphs += graphs
        if not self.due(ctx.step) and ctx.step < ctx.total:
            return
        host = jax.device_get([m for _, m in self.pending])
        rows = [(s, {k: float(np.asarray(v)) for k, v in m.items()}) for (s, _), m in zip(self.pending, host)]
        for i, (step, m) in enumerate(rows):
            if not math.isfinite(m["loss"]):
                if self.on_nonfinite == "raise":
                    raise NonFinite(step, m["loss"])
                rows = rows[:i]
                ctx.stop("diverged", now=True)
                break
            measured = step_measurement(m) if "B_small" in m else None  # a step without telemetry
            if measured is not None:
                self.noise.update(*measured)
        window = StepRows(rows, self.real_edges, self.padded_edges, self.graphs,
                          max(self.clock() - self.start, 1e-9))
        self._reset()
        self.emit(ctx, window)


class ProgressHook(Hook):
    """A tqdm bar over the steps; other hooks show numbers on it with `show(**values)`."""

    def __init__(self, total: int, initial: int, enabled: bool, desc: str = "train"):
        from tqdm import tqdm

        self.bar = tqdm(total=total, initial=initial, desc=desc, unit="step", disable=not enabled,
                        dynamic_ncols=True)
        self.shown: dict[str, str] = {}

    def show(self, **values: float) -> None:
        self.shown.update({k: f"{v:.4f}" for k, v in values.items()})
        self.bar.set_postfix(self.shown, refresh=False)

    def after_step(self, ctx: StepContext) -> None:
        self.bar.update()

    def close(self) -> None:
        self.bar.close()


class EvaluationHook(Hook):
    """At `due(step)`, `evaluate(ctx) -> flat val_* metrics`; the latest ones stay in `last`
    and are handed to `then(ctx, metrics)` callbacks in order (checkpoint ranking, targets)."""

    def __init__(self, due: Callable[[int], bool], evaluate: Callable[[StepContext], dict],
                 then: Sequence[Callable[[StepContext, dict], None]] = ()):
        self.due, self.evaluate, self.then = due, evaluate, list(then)
        self.last: dict = {}
        self.current: dict | None = None  # this step's metrics (None when it did not evaluate)
        self.seconds = 0.0

    def after_step(self, ctx: StepContext) -> None:
        self.current = None
        if not self.due(ctx.step):
            return
        t0 = time.perf_counter()
        self.current = self.last = self.evaluate(ctx)
        self.seconds += time.perf_counter() - t0
        for callback in self.then:
            callback(ctx, self.current)


@dataclasses.dataclass
class Target:
    """A validation target: `metric` reaches `value` ('max': >=, 'min': <=)."""

    metric: str = "val_f1"
    value: float = 0.9
    mode: str = "max"

    def __post_init__(self):
        if self.mode not in ("max", "min"):
            raise ConfigError(f"the target's mode must be 'max' or 'min', got {self.mode!r}")

    def reached(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        return value >= self.value if self.mode == "max" else value <= self.value

    def improves(self, value: float, than: float | None) -> bool:
        """`value` is strictly better than `than` (None: nothing yet)."""
        if not math.isfinite(value):
            return False
        return than is None or (value > than if self.mode == "max" else value < than)

    def gap(self, value: float) -> float:
        """Relative shortfall (>= 0) of `value` from the target (1 for a non-finite value)."""
        if not math.isfinite(value):
            return 1.0
        diff = (self.value - value) if self.mode == "max" else (value - self.value)
        return float(min(1.0, max(0.0, diff / max(abs(self.value), 1e-12))))


class StopRules:
    """After each evaluation: the best metrics so far, and stops — 'target' when `target` is
    reached (stop_at_target), 'patience' after `patience` evaluations without a better
    `target.metric`, 'pruned' when `report_fn(step, metrics)` says so (a sweep's pruner)."""

    def __init__(self, target: Target | None, *, stop_at_target: bool = True, patience: int = 0,
                 report_fn: Callable[[int, dict], bool] | None = None):
        self.target, self.stop_at_target, self.patience, self.report_fn = target, stop_at_target, patience, report_fn
        self.best: dict = {}
        self.best_step: int | None = None
        self.reached_step: int | None = None
        self.since_best = 0

    def __call__(self, ctx: StepContext, metrics: dict) -> None:
        if self.target is not None:
            value = metrics.get(self.target.metric, float("nan"))
            if self.target.improves(value, self.best.get(self.target.metric)):
                self.best, self.best_step, self.since_best = dict(metrics), ctx.step, 0
            else:
                self.since_best += 1
            if self.reached_step is None and self.target.reached(value):
                self.reached_step = ctx.step
                if self.stop_at_target:
                    ctx.stop("target")
            if 0 < self.patience <= self.since_best and ctx.step < ctx.total:
                ctx.stop("patience")
        if self.report_fn is not None and self.report_fn(ctx.step, metrics):
            ctx.stop("pruned")


class StopAfterSteps(Hook):
    """Leaves after `n` steps of this call, before any evaluation or checkpoint of that step, as
    if the process were killed (tests of resume)."""

    def __init__(self, n: int):
        self.n, self.done = int(n), 0

    def after_step(self, ctx: StepContext) -> None:
        self.done += 1
        if self.done >= self.n and ctx.step < ctx.total:
            ctx.stop("interrupted", now=True)


class ProfileHook(Hook):
    """A `jax.profiler` trace (TensorBoard's profile plugin / Perfetto) of steps first..last
    (1-based, inclusive) into `logdir`."""

    def __init__(self, first: int, last: int, logdir: Path):
        if not 1 <= first <= last:
            raise ConfigError(f"config key 'train.profile_steps' must be (first, last) with 1 <= first <= last, "
                              f"got ({first}, {last})")
        self.first, self.last, self.logdir, self.tracing = int(first), int(last), Path(logdir), False
        if self.first == 1:  # built right before the loop: its first step is in the trace
            self._start()

    def after_step(self, ctx: StepContext) -> None:
        import jax

        # the trace starts after step first-1 has been dispatched, so it holds steps first..last
        if not self.tracing and ctx.step == self.first - 1:
            self._start()
        if self.tracing and ctx.step >= self.last:
            jax.block_until_ready(ctx.state)
            self._stop()

    def _start(self) -> None:
        import jax

        self.logdir.mkdir(parents=True, exist_ok=True)
        jax.profiler.start_trace(str(self.logdir))
        self.tracing = True

    def _stop(self) -> None:
        import jax

        jax.profiler.stop_trace()
        self.tracing = False

    def close(self) -> None:
        if self.tracing:
            self._stop()
