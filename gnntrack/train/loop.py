"""The training run: data -> jit steps -> logs, evaluations, checkpoints -> result.

    result = train_and_evaluate(config, "runs/quickstart")

Run directory layout:
  config.json        the resolved experiment config (overrides applied)
  metrics.jsonl      train / validation / test records (see gnntrack.train.writers)
  tensorboard/       TensorBoard event files
  checkpoints/<step> orbax checkpoints: the `train.keep_checkpoints` latest + the best
  result.json        the returned result dict
  test_scores.npz    edge scores and labels of the held-out test events (scores, labels,
                     graph_offsets [G+1], event_id [G], section [G]); test_full_scores.npz for
                     whole events when the graphs are sectioned
  data/              cached simulated events and graphs (unless data.cache_dir points elsewhere)

Resuming: calling again with the same workdir (resume=True) restores the latest checkpoint,
including the data-order position and the bucket ladder, and continues; the parameters after N
steps are bitwise identical (on CPU) to those of an uninterrupted N-step run, because the batch
order is a pure function of (seed, epoch, step) and the step function is deterministic.

The run directory's lifecycle:
- one process at a time: the run holds `<workdir>/.gnntrack.lock` (gnntrack.io.lock); another
  process is refused at once with the holder's pid and host; a killed holder leaves no lock;
- a finished run called again returns its stored result.json untouched (result['already_complete']);
  killed after its final checkpoint (no result.json yet), it restores that checkpoint and scores
  the test events again: the same numbers, the test records not duplicated. The final train loss,
  the last validation metrics and the padding statistics travel in every checkpoint's meta;
- a damaged newest checkpoint is skipped (one line on stderr) for the newest one that restores,
  and moved to `checkpoints.damaged/` before training goes on; a config.json that no longer fits
  the checkpoints (an edited model) is one ConfigError naming the parameter and both shapes.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

import ml_collections
import numpy as np

from gnntrack.config import CONFIG_FILE_NAME, config_to_dict, save_config
from gnntrack.errors import ConfigError, GnnTrackError
from gnntrack.graphs.sampling import particle_sample_epoch
from gnntrack.io.atomic import atomic_path, write_json_atomic
from gnntrack.io.lock import hold_directory
from gnntrack.train.checkpoint import CHECKPOINT_DIR_NAME, CheckpointMismatch, Checkpointer, Restored
from gnntrack.train.defaults import RESUME_MUTABLE_KEYS, validate_config
from gnntrack.train.evaluation import eval_batching_config, evaluate_graphs
from gnntrack.train.history import HistoryTable, history_table_for, padded_state_fn
from gnntrack.train.hooks import (EveryStep, EvaluationHook, Hook, MetricsHook, NonFinite, ProfileHook, ProgressHook,
                                  StepContext, StepRows, StopAfterSteps, StopRules, Target, is_due, run_loop)

RESULT_FILE_NAME = "result.json"
ReportFn = Callable[[int, dict], bool]


# ---------------------------------------------------------------------------------------------
# Small pure helpers
# ---------------------------------------------------------------------------------------------

def flatten_config(tree: Any, prefix: str = "") -> dict[str, Any]:
    """{'a.b.c': value} for a nested dict."""
    out = {}
    if isinstance(tree, dict):
        for k, v in tree.items():
            out.update(flatten_config(v, f"{prefix}{k}."))
    else:
        out[prefix[:-1]] = tree
    return out


def config_differences(old: dict, new: dict, ignore=RESUME_MUTABLE_KEYS) -> list[str]:
    """Dotted keys whose values differ between two plain config dicts (minus `ignore`)."""
    a, b = flatten_config(old), flatten_config(new)
    keys = sorted(set(a) | set(b))
    return [k for k in keys if a.get(k) != b.get(k) and not any(k == i or k.startswith(i + ".") for i in ignore)]


def total_train_steps(train_config: ml_collections.ConfigDict, steps_per_epoch: int) -> int:
    return int(train_config.steps) if train_config.steps else int(train_config.epochs) * steps_per_epoch


def sampled_sizes(epoch_graphs: Callable[[int], list], n_epochs: int) -> tuple[np.ndarray, np.ndarray]:
    """(nodes, edges) int64 [n_epochs * G]: the graph sizes of the first `n_epochs` epochs' samples,
    pooled, to fit a bucket ladder to sampled graphs (one epoch's graphs are held at a time)."""
    from gnntrack.graphs.batching import graph_sizes

    sizes = [graph_sizes(epoch_graphs(e)) for e in range(max(n_epochs, 1))]
    return tuple(np.concatenate(a) for a in zip(*sizes))


def update_normalised_steps(batching: ml_collections.ConfigDict, optimizer: ml_collections.ConfigDict,
                            per_epoch: int, task_level: str) -> int:
    """Train steps per optimizer update when batching.loss_normaliser = 'update' (0 otherwise),
    checked: the edge task only (the host counts loss edges), and whole updates per epoch."""
    if batching.get("loss_normaliser", "step") != "update":
        return 0
    k = int(optimizer.accumulation_steps)
    if task_level != "edge":
        raise ConfigError("batching.loss_normaliser='update' counts loss edges on the host: it needs the "
                          f"edge task, not task level {task_level!r}; use batching.loss_normaliser='step'")
    if per_epoch % k:
        raise ConfigError(f"batching.loss_normaliser='update': {per_epoch} steps per epoch do not split into "
                          f"optimizer updates of optimizer.accumulation_steps={k} steps; make the training "
                          "graphs per epoch a multiple of batching.graphs_per_step x accumulation_steps")
    return k


def history_refresher(model, dp, history: HistoryTable) -> Callable[[Any], None]:
    """refresh(state): the table recomputed from the state's parameters (whole training events)."""
    import jax

    apply_states = jax.jit(lambda params, graph: model.apply({"params": params}, graph, return_states=True)[1])

    def refresh(state) -> None:
        params = _host_tree(dp.get_state(state)).params
        history.refresh(padded_state_fn(lambda g: apply_states(params, g), list(history.full.values())))

    return refresh


def _finite(x: float) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def _host_tree(tree: Any) -> Any:
    import jax

    return jax.device_get(tree)


def _all_finite(tree: Any) -> bool:
    import jax

    return all(bool(np.isfinite(np.asarray(x)).all()) for x in jax.tree_util.tree_leaves(tree)
               if np.issubdtype(np.asarray(x).dtype, np.floating))


def _write_scores(path: Path, scores: list[np.ndarray], graphs) -> None:
    """Edge scores + labels of evaluated graphs, concatenated, with per-graph offsets."""
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in scores])]).astype(np.int64)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(
                f, scores=np.concatenate(scores) if scores else np.zeros(0, np.float32),
                labels=np.concatenate([np.asarray(g.y, np.float32) for g in graphs]) if graphs else np.zeros(0),
                graph_offsets=offsets, event_id=np.array([g.event_id for g in graphs], np.int64),
                section=np.array([g.section for g in graphs], np.int64))


def _write_predictions(path: Path, preds: dict[str, list[np.ndarray]], graphs, task) -> None:
    """A node or graph task's predictions (scores / values per item) and targets of evaluated
    graphs, concatenated over graphs, with per-graph offsets (nodes; one item per graph)."""
    targets = [task.targets(g) for g in graphs]
    offsets = np.concatenate([[0], np.cumsum([len(t) for t in targets])]).astype(np.int64)
    arrays = {name: np.concatenate([np.reshape(v, (len(t),) + np.shape(v)[1 if task.level == "node" else 0:])
                                    for v, t in zip(values, targets)]) for name, values in preds.items()}
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays, targets=np.concatenate(targets), graph_offsets=offsets,
                                event_id=np.array([g.event_id for g in graphs], np.int64),
                                section=np.array([g.section for g in graphs], np.int64))


def load_scores(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Reads a test_scores.npz written by a run."""
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------

def resolve_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """A validated, unlocked copy of `config` (unknown keys -> ConfigError)."""
    config = ml_collections.ConfigDict(config.to_dict())
    validate_config(config)
    return config


def _check_resume_compatible(workdir: Path, config: ml_collections.ConfigDict) -> None:
    path = workdir / CONFIG_FILE_NAME
    if not path.exists():
        return
    old = json.loads(path.read_text())
    diff = config_differences(old, config_to_dict(config))
    if diff:
        raise ConfigError(
            f"{workdir} holds checkpoints of a run with a different config (keys {', '.join(diff[:8])}"
            f"{' ...' if len(diff) > 8 else ''}); resume it with the same config, start over with "
            f"--restart (gnntrack train) / resume=False, or use another --workdir")


def _finished_result(workdir: Path, latest: int, config: ml_collections.ConfigDict) -> dict[str, Any] | None:
    """The stored result.json of a run that has nothing left to do: its final checkpoint is the
    newest one (`latest`) and covers the configured steps. None when the run is not finished or
    its result is missing, unreadable or from an earlier, shorter run."""
    from gnntrack.graphs.batching import steps_per_epoch

    try:
        result = json.loads((workdir / RESULT_FILE_NAME).read_text())
        per_epoch = steps_per_epoch(int(result["n_train_graphs"]), config.batching)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if result.get("interrupted") or result.get("steps") != latest:
        return None
    return result if latest >= total_train_steps(config.train, per_epoch) else None


def _padding_to_meta(stats) -> dict:
    """A PaddingStats as JSON (it rides in the checkpoint meta: a resumed run reports the whole run's)."""
    return {"real_edges": stats.real_edges, "padded_edges": stats.padded_edges, "real_nodes": stats.real_nodes,
            "padded_nodes": stats.padded_nodes, "n_batches": stats.n_batches,
            "shapes": [[int(x) for x in shape] for shape in sorted(stats.shapes)]}


def _padding_from_meta(saved: dict | None):
    """The PaddingStats saved by `_padding_to_meta` (empty for checkpoints without them)."""
    from gnntrack.graphs.batching import PaddingStats

    saved = saved or {}
    counts = {f.name: saved[f.name] for f in dataclasses.fields(PaddingStats) if f.name in saved and f.name != "shapes"}
    return PaddingStats(**counts, shapes={tuple(s) for s in saved.get("shapes", ())})


def _say_skipped(restored: Restored) -> None:
    for skip in restored.skipped:
        print(f"gnntrack: {skip.message()}; resuming from step {restored.step}", file=sys.stderr)


def _clear_previous_outputs(workdir: Path) -> None:
    """A fresh start in a used workdir: drop outputs of the earlier run (not the data cache)."""
    import shutil

    from gnntrack.train.writers import TENSORBOARD_DIR_NAME

    shutil.rmtree(workdir / TENSORBOARD_DIR_NAME, ignore_errors=True)
    for name in (RESULT_FILE_NAME, "test_scores.npz", "test_full_scores.npz"):
        (workdir / name).unlink(missing_ok=True)


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | os.PathLike, *,
                       report_fn: ReportFn | None = None, resume: bool = True,
                       stop_after_steps: int | None = None) -> dict[str, Any]:
    """Trains and evaluates as `config` says, writing the run directory `workdir`.

    Args:
      config: a full experiment config (`gnntrack.train.defaults.default_config()` plus changes).
      workdir: the run directory (created if needed).
      report_fn: called after every validation as report_fn(step, val_metrics) with the flat
        `val_*` dict; returning True stops the run early (pruning / early stopping). The stop is
        recorded as result['stopped_early'] = True, after a checkpoint at that step.
      resume: continue from the latest checkpoint in `workdir` if there is one (same data order).
        With False, earlier checkpoints and metrics of `workdir` are discarded.
      stop_after_steps: leave after this many steps of THIS call without the final checkpoint
        or evaluation, as if the process were killed (testing resume); result['interrupted'].

    Returns:
      dict with: steps (optimizer steps done), total_steps, seconds (wall time of this call),
      train_seconds, best_step, best_value, best_metric, stopped_early, interrupted, resumed_from,
      n_devices, n_params, utilisation, n_compiled_shapes, final train loss (`loss`), the last
      validation metrics (`val_*`), and the held-out test metrics (`test_*`, and `test_full_*`
      on unsectioned events) when the run completed. A run that had nothing left to do returns
      its stored result.json with already_complete=True (and writes nothing).

    Raises:
      ConfigError for bad configs (also: resuming a workdir trained with a different config, or
      with a config.json edited so that it no longer fits the checkpoints), InputError for
      missing/invalid data, DirectoryBusy when another process holds the workdir, CheckpointError
      when no checkpoint restores or one cannot be written (disk full), GnnTrackError when the
      loss becomes NaN/inf (the checkpoints written before stay; none is written after the last
      finite-loss check).
    """
    import jax

    config = resolve_config(config)
    # Multi-process run: every process holds the same replicated state. Process 0 owns the run
    # directory and writes the checkpoints; the others keep their metrics, config and data in
    # WORKDIR/process_<i> and, on resume, restore process 0's checkpoints (the run directory must
    # be on a filesystem all processes see, as a cluster's shared scratch is).
    root = Path(workdir)
    own = root if jax.process_index() == 0 else root / f"process_{jax.process_index()}"
    with hold_directory(own):
        return _train_and_evaluate(config, root, own, report_fn=report_fn, resume=resume,
                                   stop_after_steps=stop_after_steps)


def _train_and_evaluate(config: ml_collections.ConfigDict, root: Path, workdir: Path, *, report_fn: ReportFn | None,
                        resume: bool, stop_after_steps: int | None) -> dict[str, Any]:
    """The run of `train_and_evaluate` in `workdir` (root or root/process_<i>), its lock held."""
    import jax

    from gnntrack.graphs.batching import (BucketLadder, PaddingStats, batch_iterator, make_ladder, steps_per_epoch,
                                          warmup_batches)
    from gnntrack.nn.models import build_model, cpu_kernels_label
    from gnntrack.train.data import prepare_data, with_task_targets
    from gnntrack.tasks import make_task, model_config_for
    from gnntrack.train.losses import resolve_loss_config
    from gnntrack.train.optim import make_optimizer
    from gnntrack.train.distributed import make_data_parallel
    from gnntrack.train.state import device_slice, init_train_state, param_count
    from gnntrack.train.step import make_eval_step, make_train_step
    from gnntrack.train.writers import MetricWriter

    t_start = time.perf_counter()
    tc = config.train
    writes_checkpoints = workdir == root
    ckpt_dir = root / CHECKPOINT_DIR_NAME
    if not writes_checkpoints:
        tc.progress = False
    if not resume and writes_checkpoints and ckpt_dir.exists():
        import shutil

        shutil.rmtree(ckpt_dir)
    # the other processes only restore: read-only, so they never touch process 0's saves
    checkpointer = Checkpointer(ckpt_dir, keep=int(tc.keep_checkpoints), best_metric=tc.best_metric or None,
                                best_mode=tc.best_mode, read_only=not writes_checkpoints)
    latest = checkpointer.latest_step() if resume else None
    if latest is not None:
        _check_resume_compatible(workdir, config)
        # decided on process 0's result.json by every process, so that all of them agree
        done = _finished_result(root, latest, config)
        if done is not None:
            checkpointer.close()
            return {**done, "already_complete": True}
    else:
        _clear_previous_outputs(workdir)
    save_config(config, workdir)

    # --- data, model, optimizer --------------------------------------------------------------
    splits = prepare_data(config, workdir, progress=bool(tc.progress))
    task = make_task(config.get("task", ml_collections.ConfigDict(dict(name="edge"))))
    # the edge task is the step's own weighted BCE: the reference workload's step is unchanged
    step_task = None if task.level == "edge" else task
    if step_task is not None:
        splits = with_task_targets(splits, step_task)
    train_graphs = splits.train
    dp = make_data_parallel(config.parallel)  # one process, or all devices of all processes
    n_dev = dp.n_devices
    batching = config.batching
    per_epoch = steps_per_epoch(len(train_graphs), batching)
    if per_epoch < 1:
        raise ConfigError(f"{len(train_graphs)} training graphs give no full step of "
                          f"batching.graphs_per_step={batching.graphs_per_step}; lower it or add events")
    total = total_train_steps(tc, per_epoch)
    update_steps = update_normalised_steps(batching, config.optimizer, per_epoch, task.level)
    seed = int(config.seed)
    fraction = float(config.data.particle_fraction)

    history = history_table_for(config, splits) if config.model.get("history", False) else None

    def epoch_graphs(epoch: int):
        if history is not None:  # segments with the table as refreshed at this epoch's start
            return history.graphs()
        # particle sampling: each epoch trains on a new draw, a pure function of (seed, epoch)
        return particle_sample_epoch(train_graphs, fraction, seed, epoch) if fraction else train_graphs

    first_graphs = epoch_graphs(0)
    # 'auto' class weights follow what the loss sees: with sampling, the (purer) sampled graphs
    loss_cfg = resolve_loss_config(config.loss, (g.y for g in first_graphs))
    model = build_model(model_config_for(task, config.model))
    tx, lr_fn = make_optimizer(config.optimizer, global_batch_size=int(batching.graphs_per_step),
                               total_steps=total)

    # a ladder fitted to full graphs would pad every sample to full size: fit it to the samples
    # of the first ladder_sample_epochs epochs (a larger later sample adds a rung, logged)
    ladder = make_ladder(sampled_sizes(epoch_graphs, int(batching.ladder_sample_epochs)) if fraction
                         else train_graphs, batching, n_dev, seed=seed)
    example = next(batch_iterator(first_graphs, batching, n_dev, ladder=ladder, seed=seed, epoch=0,
                                  update_steps=update_steps))
    # one jit-compiled init instead of op-by-op dispatch (seconds on a CPU)
    host_state = _host_tree(jax.jit(lambda g: init_train_state(model, tx, g, seed=seed))(
        device_slice(example.graph)))
    n_params = param_count(host_state.params)
    start_step = 0
    best = {"step": None, "value": None}
    last_val: dict = {}
    last_loss = float("nan")
    stats = PaddingStats()
    if latest is not None:
        try:
            restored = checkpointer.restore_newest(target=host_state)
        except CheckpointMismatch as exc:
            raise ConfigError(
                f"{root / CONFIG_FILE_NAME} does not fit checkpoint {exc.step} in {ckpt_dir}: {exc.detail}. Was "
                "config.json edited? Undo the edit, or start over with --restart (gnntrack train) / resume=False "
                "or another --workdir") from None
        _say_skipped(restored)
        if writes_checkpoints:
            checkpointer.set_aside([skip.step for skip in restored.skipped])
        host_state, meta, latest = restored.state, restored.meta, restored.step
        start_step = int(meta["step"])
        # the ladder lives in the checkpoint: a resumed run must pad exactly as before
        ladder = BucketLadder.from_dict(meta["ladder"])
        best = meta.get("best", best)
        saved = meta.get("summary", {})  # older checkpoints have none: the result then lacks these
        last_loss, last_val = saved.get("loss", last_loss), saved.get("val", last_val)
        stats = _padding_from_meta(saved.get("padding"))
    p_train = dp.train_step(make_train_step(model, tx, loss_cfg, dp.axis_name, lr_fn=lr_fn, task=step_task))
    if batching.precompile and start_step < total:
        # every rung compiled now, on a throwaway copy of the state (the step donates it)
        for warm in warmup_batches(first_graphs, batching, n_dev, ladder):
            jax.block_until_ready(p_train(dp.put_state(host_state), warm))
    state = dp.put_state(host_state)
    del host_state

    p_eval = dp.eval_step(make_eval_step(model, loss_cfg, task=step_task))
    writer = MetricWriter(workdir, tensorboard=bool(tc.tensorboard),
                          resume_step=start_step if latest is not None else None)
    eval_ladders: dict[str, Any] = {}
    thresholds = tuple(float(t) for t in config.eval.thresholds)

    def evaluate(name: str, graphs, prefix: str, step: int, state) -> tuple[dict, list[np.ndarray]]:
        t0 = time.perf_counter()
        if name not in eval_ladders:
            eval_ladders[name] = make_ladder(graphs, eval_batching_config(batching, len(graphs)), n_dev)
        metrics, scores = evaluate_graphs(lambda batch: p_eval(state, batch), graphs, batching, n_dev,
                                          task=step_task, ladder=eval_ladders[name], prefix=prefix,
                                          thresholds=thresholds)
        metrics["eval_s"] = time.perf_counter() - t0
        writer.write({"step": step, **metrics})
        return metrics, scores

    def save_checkpoint(ctx: StepContext) -> None:
        nonlocal best
        val = validation.current
        if val is not None and tc.best_metric:
            value = val.get(tc.best_metric)
            if value is None:
                raise ConfigError(f"train.best_metric={tc.best_metric!r} is not a validation metric; "
                                  f"known: {', '.join(k for k in val if not isinstance(val[k], dict))}")
            # ties go to the later step, as orbax's BestN retention does
            better = (best["value"] is None or (value >= best["value"] if tc.best_mode == "max"
                                                else value <= best["value"]))
            if _finite(value) and better:
                best = {"step": ctx.step, "value": float(value)}
        host = _host_tree(dp.get_state(ctx.state))
        if not _all_finite(host.params):
            raise NonFinite(ctx.step, float("nan"), what="parameters")
        # what the result reports besides the test metrics, for a run killed after this checkpoint
        summary = {"loss": float(last_loss), "padding": _padding_to_meta(stats),
                   "val": {k: np.asarray(v).item() for k, v in validation.last.items() if not isinstance(v, dict)}}
        meta_out = {"step": ctx.step, "epoch": ctx.step // per_epoch, "ladder": ladder.to_dict(), "best": best,
                    "n_devices": n_dev, "summary": summary}
        if writes_checkpoints:
            checkpointer.save(ctx.step, host, meta_out, val)

    def write_train_record(ctx: StepContext, window: StepRows) -> None:
        nonlocal last_loss
        b_edges = metrics_hook.noise.value  # nan on one device
        edges_per_graph = window.real_edges / max(window.graphs, 1)
        losses = [m["loss"] for _, m in window.rows]
        last = window.rows[-1][1]
        last_loss = last["loss"]
        writer.write({
            "step": ctx.step, "epoch": ctx.epoch, "loss": float(np.mean(losses)),
            "loss_min": float(np.min(losses)), "loss_max": float(np.max(losses)),
            "lr": last["lr"], "grad_norm": last["grad_norm"],
            "grad_norm_sq_local": last["grad_norm_sq_local"], "grad_norm_sq_global": last["grad_norm_sq_global"],
            "B_small": last["B_small"], "B_big": last["B_big"],
            "b_simple_edges": b_edges, "b_simple_graphs": b_edges / max(edges_per_graph, 1e-9),
            "utilisation": window.real_edges / max(window.padded_edges, 1),
            "n_compiled_shapes": len(stats.shapes),
            "edges_per_s": window.real_edges / window.seconds, "graphs_per_s": window.graphs / window.seconds,
            "steps_per_s": len(window.rows) / window.seconds, "wall_s": time.perf_counter() - t_start,
        })
        progress.show(loss=last_loss)

    val_graphs = splits.val[: int(config.eval.max_graphs)] if config.eval.max_graphs else splits.val

    def eval_due(step: int) -> bool:
        return is_due(step, int(tc.eval_every), total) and len(val_graphs) > 0

    def checkpoint_due(step: int) -> bool:
        return eval_due(step) or is_due(step, int(tc.checkpoint_every), total)

    progress = ProgressHook(total, start_step, bool(tc.progress))
    # fetched at every log record and before every checkpoint, so a NaN loss stops the run before
    # a bad state is saved
    metrics_hook = MetricsHook(lambda step: is_due(step, int(tc.log_every), total) or checkpoint_due(step),
                               write_train_record, noise_decay=float(tc.noise_scale_decay))
    stops = StopRules(Target(tc.target_metric, float(tc.target_value), tc.best_mode) if tc.target_metric else None,
                      report_fn=report_fn)
    validation = EvaluationHook(
        eval_due, lambda ctx: evaluate("val", val_graphs, "val_", ctx.step, ctx.state)[0],
        then=[lambda ctx, val: progress.show(val_f1=val.get("val_f1", math.nan)), stops])
    validation.last = dict(last_val)  # a resumed run's checkpoints keep the validation before it
    hooks: list[Hook] = [] if stop_after_steps is None else [StopAfterSteps(stop_after_steps)]
    hooks += [progress, EveryStep(lambda ctx: stats.update(ctx.batch)), metrics_hook, validation,
              EveryStep(save_checkpoint, due=checkpoint_due)]
    if tuple(tc.profile_steps):
        hooks.append(ProfileHook(*tc.profile_steps, logdir=workdir / "profile"))
    if history is not None:
        refresh = history_refresher(model, dp, history)
        refresh(state)
        hooks.append(EveryStep(lambda ctx: refresh(ctx.state), due=lambda step: step % per_epoch == 0 and step < total))

    def epoch_batches(epoch: int, position: int):
        return batch_iterator(epoch_graphs(epoch), batching, n_dev, ladder=ladder, seed=seed, epoch=epoch,
                              start_step=position, update_steps=update_steps)

    train_t0 = time.perf_counter()
    try:
        state, step, stop_reason = run_loop(p_train, state, epoch_batches, start_step=start_step, total=total,
                                            per_epoch=per_epoch, hooks=hooks)
    except NonFinite as bad:
        checkpointer.wait()
        good = checkpointer.latest_step()
        raise GnnTrackError(
            f"training stopped: non-finite {bad.what}"
            + (f" ({bad.value})" if bad.what == "loss" else "") + f" at step {bad.step} of {total}. "
            + (f"The last good checkpoint (step {good}) is kept in {ckpt_dir}. " if good is not None
               else "No checkpoint had been written yet. ")
            + "Lower optimizer.lr, set optimizer.clip_grad_norm, or check the input features.") from None
    except BaseException:
        writer.close(quiet=True)  # the error on its way out is the one to report (a full disk, say)
        raise
    finally:
        checkpointer.wait()
    interrupted = stop_reason == "interrupted"
    stopped_early = stop_reason in ("pruned", "target")
    last_val = validation.last or last_val
    train_seconds = time.perf_counter() - train_t0

    result: dict[str, Any] = {
        "steps": step, "total_steps": total, "resumed_from": latest, "stopped_early": stopped_early,
        "interrupted": interrupted, "stop_reason": stop_reason, "n_devices": n_dev, "n_params": n_params,
        "cpu_kernels": cpu_kernels_label(model),
        "n_train_graphs": len(train_graphs), "n_val_graphs": len(val_graphs),
        "utilisation": stats.edge_utilisation if stats.n_batches else None,
        "n_compiled_shapes": len(stats.shapes), "loss": last_loss, "loss_weights": [
            float(loss_cfg.weight_true), float(loss_cfg.weight_fake)],
        "best_metric": tc.best_metric, **{k: v for k, v in last_val.items() if not isinstance(v, dict)},
    }
    if not interrupted:
        for name, graphs, prefix in (("test", splits.test, "test_"), ("test_full", splits.test_full, "test_full_")):
            if graphs:
                metrics, scores = evaluate(name, graphs, prefix, step, state)
                result.update({k: v for k, v in metrics.items() if not isinstance(v, dict)})
                if step_task is None:
                    result[f"{prefix}thresholds"] = metrics[f"{prefix}thresholds"]
                    _write_scores(workdir / f"{name}_scores.npz", scores, graphs)
                else:
                    _write_predictions(workdir / f"{name}_predictions.npz", scores, graphs, step_task)
    checkpointer.close()
    writer.close()
    result.update(best_step=best["step"], best_value=best["value"], train_seconds=train_seconds,
                  seconds=time.perf_counter() - t_start, data=splits.info)
    if not interrupted:
        write_json_atomic(workdir / RESULT_FILE_NAME, result)
    return result
