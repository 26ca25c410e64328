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

What can still go wrong on disk is reported in one line each (`CheckpointError`):
- a checkpoint damaged after it was written (truncated or overwritten files, a missing item):
  `restore_newest` skips it for the newest one that restores (`UnreadableCheckpoint` per skip);
- a restore target whose structure or shapes differ from the saved state (an edited model
  config): `CheckpointMismatch`, checked on the saved metadata before any array is read;
- a save that fails for lack of space or permissions: the error names the directory and the
  checkpoints that are kept. A read-only Checkpointer (evaluation) never writes or deletes,
  not even a trainer's temporary directory of a save in progress.
"""

from __future__ import annotations

import dataclasses
import errno
import logging
import math
import os
import re
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as ocm

from gnntrack.errors import GnnTrackError, InputError

# absl (orbax) log records dropped, and why:
_DROPPED_LOG_MESSAGES = (
    # checkpoints saved between evaluations carry no metrics by design (the best-N policy ranks
    # only evaluated ones); orbax would warn at every such save
    "did not provide metrics",
    # a failed save is logged with its traceback by every orbax worker thread; the same error
    # reaches the caller, which reports it in one line
    "_SignalingThread.run() raised an exception",
    # read-only use (evaluation) announces every option it turns off
    "read_only=True", "Given directory is read only",
)


class _OrbaxNoiseFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(fragment in message for fragment in _DROPPED_LOG_MESSAGES)


logging.getLogger("absl").addFilter(_OrbaxNoiseFilter())


def _drop_closed_loop_reports(previous):
    """tensorstore completes the reads of a failed restore after orbax has closed its asyncio
    loop and reports each late callback as an unraisable 'Event loop is closed' RuntimeError
    (hundreds of tracebacks per damaged checkpoint); the restore's own error is reported."""

    def hook(unraisable) -> None:
        exc = unraisable.exc_value
        if isinstance(exc, RuntimeError) and str(exc) == "Event loop is closed":
            return
        previous(unraisable)

    return hook


sys.unraisablehook = _drop_closed_loop_reports(sys.unraisablehook)

CHECKPOINT_DIR_NAME = "checkpoints"


class CheckpointError(GnnTrackError):
    """A checkpoint that cannot be written or read; the message names its directory."""


class UnreadableCheckpoint(CheckpointError):
    """One saved checkpoint does not restore (damaged files, a missing item)."""

    def __init__(self, step: int, path: Path, reason: str):
        super().__init__(f"checkpoint {step} in {path.parent} cannot be read ({path}: {reason})")
        self.step, self.path, self.reason = step, path, reason

    def message(self) -> str:
        """The one line printed when a fallback skips it."""
        return f"skipped damaged checkpoint {self.step} ({self.path}: {self.reason})"


class CheckpointMismatch(CheckpointError):
    """The saved state's structure or shapes differ from the restore target's."""

    def __init__(self, step: int, path: Path, detail: str):
        super().__init__(f"checkpoint {step} ({path}) does not fit: {detail}")
        self.step, self.path, self.detail = step, path, detail


@dataclasses.dataclass
class Restored:
    """What `restore_newest` found: the state and meta of `step`, and the newer checkpoints it
    skipped because they did not restore (newest first)."""

    state: Any
    meta: dict
    step: int
    skipped: list[UnreadableCheckpoint]


def _metric_value(metrics: dict, name: str, mode: str) -> float:
    """Ranking value of one checkpoint's metrics; NaN/missing ranks worst."""
    value = metrics.get(name) if metrics else None
    if value is None or not math.isfinite(float(value)):
        return -math.inf if mode == "max" else math.inf
    return float(value)


# ---------------------------------------------------------------------------------------------
# Shapes and errors (pure)
# ---------------------------------------------------------------------------------------------

def _key_name(key: Any) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)


def tree_shapes(tree: Any) -> dict[str, tuple[int, ...]]:
    """{'params/dense_0/kernel': shape} for every leaf: arrays, ShapeDtypeStructs or orbax's
    saved-array metadata (dict keys, attribute names and sequence indices alike)."""
    import jax

    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {"/".join(_key_name(k) for k in path): tuple(getattr(leaf, "shape", np.shape(leaf)))
            for path, leaf in leaves}


def shape_mismatch(saved: Any, expected: Any) -> str | None:
    """The first difference between a saved state and what a config expects, in words ('params/x
    is (8, 16) in the checkpoint but (8, 32) for the config'); None when they fit."""
    have, want = tree_shapes(saved), tree_shapes(expected)
    problems = []
    for path in sorted(set(have) | set(want), key=lambda p: (not p.startswith("params"), p)):  # parameters first
        if path not in want:
            problems.append(f"{path} is in the checkpoint but not in the config's model")
        elif path not in have:
            problems.append(f"{path} is not in the checkpoint")
        elif have[path] != want[path]:
            problems.append(f"{path} is {have[path]} in the checkpoint but {want[path]} for the config")
    if not problems:
        return None
    more = len(problems) - 1
    return problems[0] + (f" (and {more} more difference{'s' if more > 1 else ''})" if more else "")


_SPEC = re.compile(r" \[tensorstore_spec.*", re.S)
_OS_ERROR_CODE = re.compile(r"\[os_error_code='?(\d+)'?\]")


def _short_reason(exc: BaseException) -> str:
    """One line from an orbax/tensorstore error: its innermost clauses, without the spec dump."""
    text = _SPEC.sub("", str(exc)).strip().splitlines()[0] if str(exc).strip() else ""
    clauses = text.split(": Error ")
    if len(clauses) > 2:  # 'DATA_LOSS: Error opening "cast" driver: Error opening ... : Error decoding X'
        text = "Error " + ": Error ".join(clauses[-2:])
    text = text or type(exc).__name__
    if isinstance(exc, (ValueError, KeyError)) and not text.startswith(("Error", "DATA_LOSS", "OUT_OF_RANGE")):
        text = f"{type(exc).__name__}: {text}"
    return text if len(text) <= 400 else text[:397] + "..."


# the causes a user can act on, preferred when a failed write raises several OS errors (orbax
# cleaning up after a full disk may fail again with e.g. "directory not empty")
_ENVIRONMENT_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO)


def _os_errors(exc: BaseException) -> list[tuple[int, str | None]]:
    """(errno, file) of every OS error behind `exc`: OSErrors in its chain and exception groups,
    and tensorstore errors carrying [os_error_code=N] (how a full disk shows up while writing
    array data)."""
    found, seen, pending = [], set(), [exc]
    while pending:
        current = pending.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno:
            found.append((current.errno, current.filename))
        match = _OS_ERROR_CODE.search(str(current))
        if match:
            file = re.search(r'Failed writing: "([^"]+)"', str(current))
            found.append((int(match.group(1)), file.group(1) if file else None))
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        pending.extend((current.__cause__, current.__context__))
    return found


def _os_error(exc: BaseException) -> tuple[int, str | None] | None:
    """The OS error to report for `exc` (see _ENVIRONMENT_ERRNOS); None when there is none."""
    found = _os_errors(exc)
    return next((f for f in found if f[0] in _ENVIRONMENT_ERRNOS), found[0] if found else None)


class Checkpointer:
    """Keep-N-latest + best checkpoints of (state pytree, meta dict).

    Args:
      directory: where step directories go (created if needed, unless read_only).
      keep: number of most recent checkpoints kept (>= 1).
      best_metric: key in the `metrics` dict passed to `save` ranking checkpoints, e.g.
        'val_f1'; None keeps no separate best.
      best_mode: 'max' or 'min'.
      async_save: let orbax write in a background thread (call `wait()` / `close()`).
      read_only: only read (evaluation, processes that restore another's checkpoints): nothing
        is created, saved or deleted, including temporary directories of a save in progress.
    """

    def __init__(self, directory: str | os.PathLike, *, keep: int = 3, best_metric: str | None = None,
                 best_mode: str = "max", async_save: bool = False, read_only: bool = False):
        if keep < 1:
            raise GnnTrackError(f"train.keep_checkpoints must be >= 1, got {keep}")
        if best_mode not in ("max", "min"):
            raise GnnTrackError(f"train.best_mode must be 'max' or 'min', got {best_mode!r}")
        self.directory = Path(directory).absolute()
        self.best_metric = best_metric
        self.best_mode = best_mode
        self.read_only = read_only
        policies: list[Any] = [ocm.LatestN(n=keep)]
        best_fn = None
        if best_metric:
            best_fn = lambda m: _metric_value(m, best_metric, best_mode)  # noqa: E731
            # BestN sorts ascending and keeps the tail: reverse for 'min'.
            policies.append(ocm.BestN(get_metric_fn=best_fn, reverse=(best_mode == "min"), n=1,
                                      keep_checkpoints_without_metrics=False))
        if not read_only:
            # made here: orbax refuses create=True for a process-local manager (multi-process runs)
            self.directory.mkdir(parents=True, exist_ok=True)
        options = ocp.CheckpointManagerOptions(
            preservation_policy=ocm.AnyPreservationPolicy(policies),
            best_fn=best_fn, best_mode=best_mode, read_only=read_only,
            enable_async_checkpointing=async_save, create=False, cleanup_tmp_directories=not read_only,
            multiprocessing_options=_process_local_options())
        # handlers named up front: a fresh manager can then read a step's metadata before any restore
        self._manager = ocp.CheckpointManager(
            self.directory, options=options,
            item_handlers={"state": ocp.StandardCheckpointHandler(), "meta": ocp.JsonCheckpointHandler()})

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
        return best if best is not None and self._manager.metrics(best) is not None else None

    def step_path(self, step: int) -> Path:
        return self.directory / str(int(step))

    # --- save / restore ----------------------------------------------------------------------
    def save(self, step: int, state: Any, meta: dict | None = None, metrics: dict | None = None,
             *, force: bool = True) -> bool:
        """Saves `state` (pytree of arrays) and `meta` (JSON dict) at `step`.

        Args:
          metrics: flat dict of floats (validation metrics at this step) for best-tracking;
            None for a checkpoint taken between evaluations.
        Returns True when a checkpoint was written.
        Raises CheckpointError naming the directory when the disk is full or not writable.
        """
        if self.read_only:
            raise GnnTrackError(f"{self.directory}: this Checkpointer is read-only")
        state = _to_host(state)
        clean_metrics = None
        if metrics is not None:
            clean_metrics = {k: float(v) for k, v in metrics.items()
                             if isinstance(v, (int, float, np.number)) and not isinstance(v, bool)}
        threads = set(threading.enumerate())
        try:
            return self._manager.save(
                int(step),
                args=ocp.args.Composite(state=ocp.args.StandardSave(state),
                                        meta=ocp.args.JsonSave(dict(meta or {}))),
                metrics=clean_metrics, force=force)
        except Exception as exc:
            # the save's other writer threads still run into the failure; let them end first, so
            # that they neither print at interpreter exit nor disturb a later save in this process
            for thread in set(threading.enumerate()) - threads:
                if thread.ident is not None:  # enumerate() also lists threads still starting
                    thread.join(timeout=60)
            raise self._write_error(exc, step) from None

    def _write_error(self, exc: Exception, step: int | None) -> Exception:
        """CheckpointError for a write that failed for an OS reason (full disk, permissions); any
        other exception (a bug) is returned as it is."""
        found = _os_error(exc)
        if found is None:
            return exc
        code, filename = found
        kept = [s for s in self._manager.all_steps() if step is None or s != step]
        what = f"checkpoint {step}" if step is not None else "a checkpoint"
        return CheckpointError(
            f"cannot write {what} in {self.directory}: {os.strerror(code).lower()}"
            + (f" ({filename})" if filename else "") + "; "
            + (f"the checkpoints at step {', '.join(map(str, sorted(kept)))} are kept. " if kept else "")
            + ("Free some space there and run the same command again to resume"
               if code in (errno.ENOSPC, errno.EDQUOT) else "Check that the directory is writable and run again"))

    def restore(self, step: int | None = None, target: Any = None) -> tuple[Any, dict]:
        """Restores (state, meta) at `step` (default: latest).

        Args:
          target: a pytree with the structure (and dtypes/shapes) of the saved state, e.g. a
            freshly initialised state; leaves come back as host numpy arrays in that structure.
        Raises CheckpointMismatch when the saved structure/shapes differ from `target`'s,
        UnreadableCheckpoint when the checkpoint's files do not restore.
        """
        if step is None:
            step = self.latest_step()
        if step is None:
            raise GnnTrackError(f"no checkpoint to restore in {self.directory}")
        self.wait()
        step, path = int(step), self.step_path(step)
        try:
            saved = self._manager.item_metadata(step)["state"] if target is not None else None
            if saved is not None:
                detail = shape_mismatch(saved, target)
                if detail is not None:
                    raise CheckpointMismatch(step, path, detail)
            state_args = (ocp.args.StandardRestore(_abstract(target)) if target is not None
                          else ocp.args.StandardRestore())
            restored = self._manager.restore(
                step, args=ocp.args.Composite(state=state_args, meta=ocp.args.JsonRestore()))
        except CheckpointMismatch:
            raise
        except Exception as exc:  # damage shows up as ValueError, KeyError, JSONDecodeError, OSError...
            reason = _explain(path) or _short_reason(exc).replace(f"{path}/", "")  # paths inside the step
            raise UnreadableCheckpoint(step, path, reason) from None
        return restored["state"], dict(restored["meta"] or {})

    def restore_newest(self, target: Any = None, *, prefer: int | None = None) -> Restored:
        """Restores the newest checkpoint that restores, skipping damaged newer ones.

        Args:
          target: as for `restore`; a CheckpointMismatch is raised at once (it is not damage:
            older checkpoints of the same run would not fit either).
          prefer: a step tried first (e.g. the best one), then the others newest first.
        Raises CheckpointError (one line, naming every step tried) when none restores.
        """
        candidates = sorted(self.all_steps(), reverse=True)
        if prefer is not None and prefer in candidates:
            candidates.remove(prefer)
            candidates.insert(0, prefer)
        if not candidates:
            raise GnnTrackError(f"no checkpoint to restore in {self.directory}")
        skipped: list[UnreadableCheckpoint] = []
        for step in candidates:
            try:
                state, meta = self.restore(step, target)
            except UnreadableCheckpoint as exc:
                skipped.append(exc)
                continue
            return Restored(state=state, meta=meta, step=step, skipped=skipped)
        raise CheckpointError(
            f"no checkpoint in {self.directory} can be read (steps {', '.join(str(s.step) for s in skipped)}; "
            f"the newest: {skipped[0].reason}); start over with --restart (gnntrack train) or another workdir")

    def set_aside(self, steps: list[int]) -> Path | None:
        """Moves damaged step directories out of the checkpoint directory into
        `<directory>.damaged/<step>` (kept for inspection; a new save of the step would collide
        with them otherwise); returns that folder (None when there was nothing to move)."""
        if not steps:
            return None
        aside = self.directory.with_name(self.directory.name + ".damaged")
        aside.mkdir(parents=True, exist_ok=True)
        for step in steps:
            target, n = aside / str(step), 1
            while target.exists():
                target, n = aside / f"{step}.{n}", n + 1
            os.replace(self.step_path(step), target)
        self._manager.reload()
        return aside

    def wait(self) -> None:
        try:
            self._manager.wait_until_finished()
        except Exception as exc:
            raise self._write_error(exc, None) from None

    def close(self) -> None:
        self.wait()
        self._manager.close()

    def __enter__(self) -> "Checkpointer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _explain(path: Path) -> str | None:
    """What is visibly missing or empty in a step directory that did not restore (None when the
    damage is inside the data, where the restore's own error says more)."""
    for item in ("state", "meta"):
        if not (path / item).is_dir():
            return f"{item}/ is missing"
    for rel in ("state/_METADATA", "meta/metadata"):
        f = path / rel
        if f.is_file() and f.stat().st_size == 0:
            return f"{rel} is empty"
    return None


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


def restore_run_checkpoint(ckpt_dir: Path, config: Any, checkpoint: str | int) -> tuple[Any, int, str]:
    """(state, step, 'best' | 'latest' | 'step') of a run's checkpoint, for any task: 'best' by the
    run's train.best_metric (the latest when none is marked), 'latest', or a step number. Only
    reads; a damaged 'best' or 'latest' one is skipped for the newest that restores, with one line
    on stderr; a damaged one asked for by its step is a CheckpointError. InputError when there is
    no checkpoint or no such step."""
    train = config.get("train", {})
    with Checkpointer(ckpt_dir, best_metric=train.get("best_metric", None) or None,
                      best_mode=train.get("best_mode", "max"), read_only=True) as ckpt:
        steps = ckpt.all_steps()
        if not steps:
            raise InputError(f"{ckpt_dir.parent}: no checkpoint to evaluate in {ckpt_dir}; train the run "
                             f"first (gnntrack train --workdir {ckpt_dir.parent})")
        if checkpoint not in ("best", "latest"):
            if not str(checkpoint).isdigit():
                raise InputError(f"checkpoint must be 'best', 'latest' or a step number, got {checkpoint!r}")
            step = int(checkpoint)
            if step not in steps:
                raise InputError(f"{ckpt_dir}: no checkpoint at step {step}; available: {steps}")
            try:
                return ckpt.restore(step)[0], step, "step"
            except CheckpointError as exc:
                raise CheckpointError(f"{exc}; choose another with --checkpoint (available: {steps})") from None
        best = ckpt.best_step() if checkpoint == "best" else None
        restored = ckpt.restore_newest(prefer=best)
    for skip in restored.skipped:
        print(f"gnntrack: {skip.message()}; using step {restored.step}", file=sys.stderr)
    return restored.state, restored.step, "best" if best is not None and restored.step == best else "latest"
