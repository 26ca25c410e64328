"""Checkpoints: a small facade over `orbax.checkpoint.CheckpointManager`.

A run directory keeps its checkpoints in `<workdir>/checkpoints/<step>/`, each holding

- `state`: the training state as a pytree of host numpy arrays (device-layout agnostic: the
  loop un-replicates before saving and re-replicates after restoring, so a run saved on 4
  devices can resume on 1);
- `meta`: a small JSON dict (data-order position, best metric so far, ...).

Retention keeps the `keep` most recent checkpoints plus the best one by a validation metric
(orbax preservation policies `LatestN` ∪ `BestN(n=1)`). Orbax writes into a temporary
directory and renames it when complete, so a crash mid-save never leaves a half checkpoint
that a resume would pick up.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as ocm

from gnntrack.errors import GnnTrackError


class _BetweenEvaluationsFilter(logging.Filter):
    """Drops orbax's warning for checkpoints saved between evaluations (no metrics by design:
    the best-N policy ranks only evaluated ones), which would otherwise print at every such save."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "did not provide metrics" not in record.getMessage()


logging.getLogger("absl").addFilter(_BetweenEvaluationsFilter())

CHECKPOINT_DIR_NAME = "checkpoints"


def _metric_value(metrics: dict, name: str, mode: str) -> float:
    """Ranking value of one checkpoint's metrics; NaN/missing ranks worst."""
    value = metrics.get(name) if metrics else None
    if value is None or not math.isfinite(float(value)):
        return -math.inf if mode == "max" else math.inf
    return float(value)


class Checkpointer:
    """Keep-N-latest + best checkpoints of (state pytree, meta dict).

    Args:
      directory: where step directories go (created if needed).
      keep: number of most recent checkpoints kept (>= 1).
      best_metric: key in the `metrics` dict passed to `save` ranking checkpoints, e.g.
        'val_f1'; None keeps no separate best.
      best_mode: 'max' or 'min'.
      async_save: let orbax write in a background thread (call `wait()` / `close()`).
    """

    def __init__(self, directory: str | os.PathLike, *, keep: int = 3, best_metric: str | None = None,
                 best_mode: str = "max", async_save: bool = False):
        if keep < 1:
            raise GnnTrackError(f"train.keep_checkpoints must be >= 1, got {keep}")
        if best_mode not in ("max", "min"):
            raise GnnTrackError(f"train.best_mode must be 'max' or 'min', got {best_mode!r}")
        self.directory = Path(directory).absolute()
        self.best_metric = best_metric
        self.best_mode = best_mode
        policies: list[Any] = [ocm.LatestN(n=keep)]
        best_fn = None
        if best_metric:
            best_fn = lambda m: _metric_value(m, best_metric, best_mode)  # noqa: E731
            # BestN sorts ascending and keeps the tail: reverse for 'min'.
            policies.append(ocm.BestN(get_metric_fn=best_fn, reverse=(best_mode == "min"), n=1,
                                      keep_checkpoints_without_metrics=False))
        # made here: orbax refuses create=True for a process-local manager (multi-process runs)
        self.directory.mkdir(parents=True, exist_ok=True)
        options = ocp.CheckpointManagerOptions(
            preservation_policy=ocm.AnyPreservationPolicy(policies),
            best_fn=best_fn, best_mode=best_mode,
            enable_async_checkpointing=async_save, create=False, cleanup_tmp_directories=True,
            multiprocessing_options=_process_local_options())
        self._manager = ocp.CheckpointManager(self.directory, options=options,
                                              item_names=("state", "meta"))

    # --- queries -----------------------------------------------------------------------------
    def all_steps(self) -> list[int]:
        """Steps with a complete checkpoint on disk, ascending."""
        return sorted(int(s) for s in self._manager.all_steps())

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def best_step(self) -> int | None:
        """Step of the best checkpoint by `best_metric` (None without best_metric or metrics)."""
        if not self.best_metric:
            return None
        steps = self.all_steps()
        if not steps:
            return None
        best = self._manager.best_step()
        # orbax falls back to the latest step when no checkpoint carries metrics
        return best if best is not None and self._has_metrics(best) else None

    def _has_metrics(self, step: int) -> bool:
        for info in self._manager._checkpoints:  # noqa: SLF001 - no public per-step metrics API
            if info.step == step:
                return info.metrics is not None
        return False

    # --- save / restore ----------------------------------------------------------------------
    def save(self, step: int, state: Any, meta: dict | None = None, metrics: dict | None = None,
             *, force: bool = True) -> bool:
        """Saves `state` (pytree of arrays) and `meta` (JSON dict) at `step`.

        Args:
          metrics: flat dict of floats (validation metrics at this step) for best-tracking;
            None for a checkpoint taken between evaluations.
        Returns True when a checkpoint was written.
        """
        state = _to_host(state)
        clean_metrics = None
        if metrics is not None:
            clean_metrics = {k: float(v) for k, v in metrics.items()
                             if isinstance(v, (int, float, np.number)) and not isinstance(v, bool)}
        return self._manager.save(
            int(step),
            args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                    meta=ocp.args.JsonSave(dict(meta or {}))),
            metrics=clean_metrics, force=force)

    def restore(self, step: int | None = None, target: Any = None) -> tuple[Any, dict]:
        """Restores (state, meta) at `step` (default: latest).

        Args:
          target: a pytree with the structure (and dtypes/shapes) of the saved state, e.g. a
            freshly initialised state; leaves come back as host numpy arrays in that structure.
        """
        if step is None:
            step = self.latest_step()
        if step is None:
            raise GnnTrackError(f"no checkpoint to restore in {self.directory}")
        self._manager.wait_until_finished()
        state_args = (ocp.args.StandardRestore(_abstract(target)) if target is not None
                      else ocp.args.StandardRestore())
        restored = self._manager.restore(
            int(step), args=ocp.args.Composite(state=state_args, meta=ocp.args.JsonRestore()))
        return restored["state"], dict(restored["meta"] or {})

    def wait(self) -> None:
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()

    def __enter__(self) -> "Checkpointer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _process_local_options():
    """In a multi-process run the state is replicated and saved from host memory by process 0
    alone (the others only restore), so orbax must not wait for the other processes: each
    process is its own primary host. Orbax's default in one process."""
    import jax

    if jax.process_count() == 1:
        return ocp.options.MultiprocessingOptions()
    pid = jax.process_index()
    return ocp.options.MultiprocessingOptions(primary_host=pid, active_processes={pid},
                                              barrier_sync_key_prefix=f"gnntrack_process_{pid}")


def _to_host(tree: Any) -> Any:
    """Pytree of host numpy arrays (copies jax arrays off device)."""
    import jax

    return jax.tree_util.tree_map(lambda x: np.asarray(x), tree)


def _abstract(tree: Any) -> Any:
    """Shape/dtype skeleton for restoring into numpy arrays of the target's structure."""
    import jax

    return jax.tree_util.tree_map(lambda x: np.zeros(np.shape(x), dtype=np.asarray(x).dtype), tree)
