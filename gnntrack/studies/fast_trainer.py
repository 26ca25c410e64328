"""The fast study trainer: `train_to_target` trains a run config until a validation target is
reached (or its step budget is spent), built from the training core (DataParallel,
make_train_step, batch_iterator).

Data, padded batches and compiled steps are cached in-process (`clear_caches` drops them), and
the learning rate and warmup live in the optimizer STATE (`gnntrack.studies.runtime_schedule`),
so the tuning trials of one point reuse one compiled step. It evaluates on a geometric schedule
(every `eval_rel` x step, so steps-to-target has a fixed relative resolution).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from jax.sharding import NamedSharding, PartitionSpec as P

from gnntrack.config import save_config
from gnntrack.errors import ConfigError
from gnntrack.graphs.batching import batch_iterator, make_ladder, steps_per_epoch
from gnntrack.io.atomic import write_json_atomic, write_text_atomic
from gnntrack.nn.models import build_model
from gnntrack.studies.runtime_schedule import (RuntimeScheduleState, runtime_schedule_values, schedule_factor,
                                               scale_by_runtime_schedule, unit_optimizer_config)
from gnntrack.studies.study_runner import clean
from gnntrack.studies.to_target import METRICS_FILE, RESULT_FILE, Target, unreached_objective
from gnntrack.tasks import make_task, model_config_for
from gnntrack.train.data import prepare_data, with_task_targets
from gnntrack.train.defaults import validate_config
from gnntrack.train.evaluation import eval_batching_config, evaluate_graphs
from gnntrack.train.hooks import EvaluationHook, MetricsHook, StepRows, StopRules, geometric_schedule, run_loop
from gnntrack.train.losses import resolve_loss_config
from gnntrack.train.optim import make_optimizer
from gnntrack.train.parallel import DataParallel
from gnntrack.train.state import TrainState
from gnntrack.train.step import make_eval_step, make_train_step



def _key(*parts: Any) -> str:
    def plain(x):
        if isinstance(x, ml_collections.ConfigDict):
            return json.loads(x.to_json_best_effort())
        return x
    return json.dumps([plain(p) for p in parts], sort_keys=True, default=str)


class _LRU(OrderedDict):
    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def get_or(self, key, make: Callable[[], Any]):
        if key in self:
            self.move_to_end(key)
            return self[key]
        value = make()
        self[key] = value
        while len(self) > self.size:
            self.popitem(last=False)
        return value


_SPLITS = _LRU(4)
_ENGINES = _LRU(16)
_EPOCHS = _LRU(96)
_VAL = _LRU(8)


def clear_caches() -> None:
    """Drops the in-process data / batch / compiled-step caches of the fast back end."""
    for cache in (_SPLITS, _ENGINES, _EPOCHS, _VAL):
        cache.clear()


def _step_task(config: ml_collections.ConfigDict):
    """The run's node or graph task, or None for the edge task (the step's own weighted BCE)."""
    task = make_task(config.get("task", ml_collections.ConfigDict(dict(name="edge"))))
    return None if task.level == "edge" else task


def _splits(config: ml_collections.ConfigDict, workdir: Path):
    def make():
        splits, task = prepare_data(config, workdir, progress=False), _step_task(config)
        return splits if task is None else with_task_targets(splits, task)

    return _SPLITS.get_or(_key(config.data, config.graph, config.get("task")), make)


@dataclasses.dataclass
class _Engine:
    """Compiled pieces shared by the runs of one (model, optimizer kind, batching, devices)."""

    model: Any
    tx: Any
    dp: Any
    ladder: Any
    loss_cfg: Any
    p_train: Callable
    p_eval: Callable
    init_state: Callable   # (seed, graph, lr, warmup, init_factor) -> TrainState (jit)
    task: Any = None       # a node / graph task, None for edges
    metric_names: tuple = ()  # what an evaluation reports (known after the first one)
    warm: bool = False


def _engine(config: ml_collections.ConfigDict, train_graphs, data_key: str) -> _Engine:
    def make() -> _Engine:
        dp = DataParallel(config.parallel)
        task = _step_task(config)
        model = build_model(config.model if task is None else model_config_for(task, config.model))
        loss_cfg = resolve_loss_config(config.loss, (g.y for g in train_graphs))
        unit_tx, _ = make_optimizer(unit_optimizer_config(config.optimizer),
                                    global_batch_size=int(config.batching.graphs_per_step))

        tx = optax.chain(unit_tx, scale_by_runtime_schedule())
        ladder = make_ladder(train_graphs, config.batching, dp.n_devices, seed=0)
        p_train = dp.train_step(make_train_step(model, tx, loss_cfg, dp.axis_name, task=task))
        p_eval = dp.eval_step(make_eval_step(model, loss_cfg, task=task))
        def init_state(seed, graph, lr, warmup, init_factor):
            # one compiled init (params, optimizer state, schedule values) instead of op-by-op dispatch

            init_rng, state_rng = jax.random.split(jax.random.PRNGKey(seed))
            params = model.init(init_rng, graph, train=False)["params"]
            state = TrainState.create(params, tx, state_rng)
            sched = RuntimeScheduleState(count=jnp.zeros([], jnp.int32), lr=lr, warmup=warmup, init_factor=init_factor)
            return state.replace(opt_state=(*state.opt_state[:-1], sched))

        return _Engine(model, tx, dp, ladder, loss_cfg, p_train, p_eval, jax.jit(init_state), task=task)

    opt = unit_optimizer_config(config.optimizer)
    key = _key(data_key, config.model, config.get("task"), opt, config.loss, config.batching, config.parallel)
    return _ENGINES.get_or(key, make)


@dataclasses.dataclass
class _HostBatch:
    device: Any            # DeviceBatch placed on the devices
    n_real_edges: np.ndarray
    n_graphs: int
    padded_edges: int


def _epoch_batches(engine: _Engine, train_graphs, config, data_key: str, seed: int, epoch: int) -> list[_HostBatch]:
    def make():
        out = []
        for b in batch_iterator(train_graphs, config.batching, engine.dp.n_devices, ladder=engine.ladder,
                                seed=seed, epoch=epoch):
            out.append(_HostBatch(engine.dp.put_batch(b), np.asarray(b.n_real_edges), int(b.n_graphs),
                                  int(b.shape[0] * b.shape[2])))
        return out

    key = _key(data_key, config.batching, engine.dp.n_devices, engine.ladder.to_dict(), seed, epoch)
    return _EPOCHS.get_or(key, make)


def _val_batches(engine: _Engine, val_graphs, config, data_key: str, split: str = "val"):
    """[(Batch, its DeviceBatch on the devices)] covering every graph of `split` once, in one
    step (one compiled eval shape), placed on the devices once for all evaluations."""
    def make():
        cfg = eval_batching_config(config.batching, len(val_graphs))
        cfg.graphs_per_step = len(val_graphs)
        cfg.max_buckets = 1
        ladder = make_ladder(val_graphs, cfg, engine.dp.n_devices)
        return [(b, engine.dp.put_batch(b)) for b in batch_iterator(
            val_graphs, cfg, engine.dp.n_devices, ladder=ladder, shuffle=False, drop_remainder=False)]

    key = (_key(data_key, config.batching, engine.dp.n_devices) if split == "val"
           else _key(data_key, config.batching, engine.dp.n_devices, split))
    return _VAL.get_or(key, make)


def _evaluate(engine: _Engine, state, graphs, batches, config, prefix: str = "val_") -> dict[str, float]:
    """Flat metrics of `graphs` through the one prediction path (`evaluate_graphs`) on the cached
    device batches."""
    placed = {id(batch): device for batch, device in batches}
    metrics, _ = evaluate_graphs(lambda batch: engine.p_eval(state, placed[id(batch)]), graphs, config.batching,
                                 engine.dp.n_devices, task=engine.task, batches=[batch for batch, _ in batches],
                                 prefix=prefix)
    return {k: v for k, v in metrics.items() if not isinstance(v, dict) and not k.startswith("n_")}


def _init_state(engine: _Engine, example_graph, seed: int, lr: float, warmup: int, init_factor: float):
    """Fresh state (same values as gnntrack.train.state.init_train_state(seed)) with the runtime
    schedule set, placed on the devices."""
    state = engine.init_state(np.int32(seed), example_graph, np.float32(lr), np.float32(warmup),
                              np.float32(init_factor))
    if engine.dp.mode == "shard_map":
        # a fresh state owned by nobody else: place it without DataParallel.put_state's defensive
        # per-leaf copies (each a small compilation)
        return jax.device_put(state, NamedSharding(engine.dp.mesh, P()))
    return engine.dp.put_state(state)


def first_events(graphs, n_events: int) -> list:
    """The graphs of the first `n_events` distinct event ids (in id order; every section of an
    event). ConfigError when fewer events are there."""
    ids = sorted({int(g.event_id) for g in graphs})
    if not 1 <= n_events <= len(ids):
        raise ConfigError(f"{n_events} training events asked for, the training split has {len(ids)} "
                          f"(data.n_train); use 1 <= n <= {len(ids)}")
    keep = set(ids[:n_events])
    return [g for g in graphs if int(g.event_id) in keep]


def train_to_target(config: ml_collections.ConfigDict, workdir: str | os.PathLike, *,
                    report_fn: Callable[[int, dict], bool] | None = None, resume: bool = True,
                    target: Target | None = None, eval_rel: float = 0.05, eval_min_every: int = 1,
                    noise_decay: float = 0.9, stop_at_target: bool = True, train_events: int | None = None,
                    eval_train: bool = False, patience: int = 0) -> dict[str, Any]:
    """Trains `config` until the validation target is reached or `config.train.steps` are done.

    The signature matches the sweep's train function (`run_sweep(train_fn=functools.partial(
    train_to_target, target=...))`). Writes `metrics.jsonl` (train records every
    `config.train.log_every` steps with loss, lr, gradient norms and B_simple; a val record at
    every evaluation) and `result.json`, both atomically at the end; with resume=True an existing
    result.json is returned as is (runs are short: an interrupted run starts over).

    Data-size studies: `train_events` trains on the first n events of the training split only
    (the validation split stays the one of data.n_train, so runs with different n share it, and
    so do the batch shapes and loss weights);
    `eval_train` also evaluates the training graphs at every evaluation (`train_*` metrics in
    the val records and in `best_*`); `patience` > 0 stops after that many evaluations without
    a better validation `target.metric` (early stopping; `best_*` and best_step are the
    evaluation it keeps).

    Returns:
      dict: reached (bool), steps_to_target (int or None), examples_to_target (graphs),
      epochs_to_target, wall_to_target_s (training time without evaluations / compilation),
      objective (steps_to_target, or budget * (2 + relative gap) when not reached: the sweep
      minimises it), steps, budget, batch_size, lr, warmup_steps, best `val_*` and final `val_*`
      metrics, edges_per_step (mean real edges per step), padded_edges_per_step, b_simple_edges
      and b_simple_graphs (final EMA estimate; nan on one device), diverged, seed, best_step,
      stopped_early, n_train_events.
    """
    workdir = Path(workdir)
    result_path = workdir / RESULT_FILE
    if resume and result_path.exists():
        return json.loads(result_path.read_text())
    config = ml_collections.ConfigDict(config.to_dict())
    validate_config(config)
    target = target or Target()
    workdir.mkdir(parents=True, exist_ok=True)
    save_config(config, workdir)
    splits = _splits(config, workdir)
    train_graphs, val_graphs = splits.train, splits.val
    if not val_graphs:
        raise ConfigError("a steps-to-target run needs validation graphs (data.n_val > 0)")
    data_key = _key(config.data, config.graph)
    # built on the whole training split: every train_events subset shares its bucket shapes (one
    # compiled step for all sizes; padding never changes a real result) and its loss weights
    engine = _engine(config, train_graphs, data_key)
    if train_events is not None:
        train_graphs = first_events(train_graphs, int(train_events))
        data_key = _key(config.data, config.graph, int(train_events))
    bs = int(config.batching.graphs_per_step)

    per_epoch = steps_per_epoch(len(train_graphs), config.batching)
    if per_epoch < 1:
        raise ConfigError(f"{len(train_graphs)} training graphs give no full step of batching.graphs_per_step={bs}")
    budget = int(config.train.steps)
    seed = int(config.seed)
    lr, warmup, init_factor = runtime_schedule_values(config.optimizer, bs)
    val = _val_batches(engine, val_graphs, config, data_key)
    train_eval = _val_batches(engine, train_graphs, config, data_key, "train") if eval_train else None
    first = _epoch_batches(engine, train_graphs, config, data_key, seed, 0)
    example = jax.tree_util.tree_map(lambda x: np.asarray(x)[0], first[0].device.graph)
    if not engine.warm:  # compile train (every bucket shape) + eval once, outside run timings
        scratch = _init_state(engine, example, seed, lr, warmup, init_factor)
        shapes = {}
        for hb in first:
            shapes.setdefault(jax.tree_util.tree_map(np.shape, hb.device).__repr__(), hb)
        for hb in shapes.values():
            scratch, m = engine.p_train(scratch, hb.device)
        engine.metric_names = tuple(_evaluate(engine, scratch, val_graphs, val, config))
        jax.block_until_ready(m)
        del scratch
        engine.warm = True
    if target.metric not in engine.metric_names:
        raise ConfigError(f"config key 'study.target_metric'={target.metric!r}: this run's validation reports "
                          f"{', '.join(engine.metric_names)}")
    state = _init_state(engine, example, seed, lr, warmup, init_factor)

    records: list[dict] = []
    log_every = max(1, int(config.train.log_every))
    evals = set(geometric_schedule(budget, float(eval_rel), int(eval_min_every)))
    mean_edges_per_graph = float(np.mean([g.n_edges for g in train_graphs]))
    loss_window: list[float] = []
    totals = {"edges": 0, "padded": 0, "graphs": 0}
    t_start = time.perf_counter()

    def training_time() -> float:  # wall time of the loop minus the evaluations so far
        return time.perf_counter() - t_start - validation.seconds

    def record_steps(ctx, window: StepRows) -> None:
        totals["edges"] += window.real_edges
        totals["padded"] += window.padded_edges
        totals["graphs"] += window.graphs
        train_s = training_time()
        for s, m in window.rows:
            loss_window.append(m["loss"])
            if s % log_every == 0 or s == ctx.step:
                factor = float(schedule_factor(np.asarray(s - 1), np.float32(warmup), np.float32(init_factor)))
                b_edges = metrics_hook.noise.value
                records.append({
                    "step": s, "epoch": (s - 1) // per_epoch, "loss": float(np.mean(loss_window)),
                    "lr": lr * factor, "grad_norm": m["grad_norm"],
                    "grad_norm_sq_local": m["grad_norm_sq_local"], "grad_norm_sq_global": m["grad_norm_sq_global"],
                    "B_small": m["B_small"], "B_big": m["B_big"], "b_simple_edges": b_edges,
                    "b_simple_graphs": b_edges / mean_edges_per_graph if math.isfinite(b_edges) and mean_edges_per_graph else float("nan"),
                    "train_s": train_s})
                loss_window.clear()

    def evaluate(ctx) -> dict:
        metrics = _evaluate(engine, ctx.state, val_graphs, val, config)
        if train_eval is not None:
            metrics.update(_evaluate(engine, ctx.state, train_graphs, train_eval, config, "train_"))
        return metrics

    def note_evaluation(ctx, metrics: dict) -> None:
        train_s = training_time()  # validation.seconds already holds this evaluation
        records.append({"step": ctx.step, **metrics, "train_s": train_s, "wall_s": time.perf_counter() - t_start})
        if stops.reached_step == ctx.step:
            reached_wall.append(train_s)

    metrics_hook = MetricsHook(lambda step: step in evals, record_steps, noise_decay=float(noise_decay),
                               sizes=lambda hb: (int(hb.n_real_edges.sum()), hb.padded_edges, hb.n_graphs),
                               on_nonfinite="stop")
    stops = StopRules(target, stop_at_target=stop_at_target, patience=int(patience), report_fn=report_fn)
    reached_wall: list[float] = []
    validation = EvaluationHook(lambda step: step in evals, evaluate, then=[stops, note_evaluation])

    def epoch_batches(epoch: int, position: int):
        return _epoch_batches(engine, train_graphs, config, data_key, seed, epoch)[position:]

    state, step, reason = run_loop(lambda st, hb: engine.p_train(st, hb.device), state, epoch_batches,
                                   start_step=0, total=budget, per_epoch=per_epoch,
                                   hooks=[metrics_hook, validation])
    diverged, pruned = reason == "diverged", reason == "pruned"
    stopped_early = reason == "patience"
    reached_step, best, best_step, last_val = stops.reached_step, stops.best, stops.best_step, validation.last
    eval_seconds = validation.seconds
    edges_total, padded_total, graphs_total = totals["edges"], totals["padded"], totals["graphs"]
    reached_wall = reached_wall[0] if reached_wall else None
    train_seconds = time.perf_counter() - t_start - eval_seconds
    reached = reached_step is not None
    final_value = best.get(target.metric, float("nan"))
    objective = float(reached_step) if reached else unreached_objective(budget, target, final_value,
                                                                        best.get("val_loss", float("nan")))
    b_edges = metrics_hook.noise.value
    result = {
        "reached": reached, "steps_to_target": reached_step,
        "examples_to_target": reached_step * bs if reached else None,
        "epochs_to_target": reached_step * bs / len(train_graphs) if reached else None,
        "wall_to_target_s": reached_wall, "objective": objective, "target_metric": target.metric,
        "target_value": target.value, "steps": step, "budget": budget, "batch_size": bs,
        "n_devices": engine.dp.n_devices, "optimizer": config.optimizer.name, "lr": lr,
        "warmup_steps": warmup, "seed": seed, "diverged": diverged, "pruned": pruned,
        "best_step": best_step, "stopped_early": stopped_early,
        "n_train_events": len({int(g.event_id) for g in train_graphs}), "n_train_graphs": len(train_graphs), "n_val_graphs": len(val_graphs),
        "edges_per_step": edges_total / max(step, 1), "padded_edges_per_step": padded_total / max(step, 1),
        "graphs_per_step": graphs_total / max(step, 1), "mean_edges_per_graph": mean_edges_per_graph,
        "train_seconds": train_seconds, "eval_seconds": eval_seconds,
        "b_simple_edges": b_edges,
        "b_simple_graphs": b_edges / mean_edges_per_graph if math.isfinite(b_edges) and mean_edges_per_graph else float("nan"),
        **{f"best_{k}": v for k, v in best.items()}, **last_val,
    }
    write_text_atomic(workdir / METRICS_FILE, "".join(json.dumps(clean(r)) + "\n" for r in records))
    write_json_atomic(result_path, clean(result))
    return clean(result)
