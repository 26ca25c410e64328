"""Batch-size study: steps-, examples-, epochs- and wall-time-to-target vs global batch size.

    config = load_config("experiments/scaling/batch_size.py")
    summary = run_batch_size_study(config, "runs/scaling")      # writes results.* and plots

For every (optimizer, batch size) point the learning rate and the warmup are tuned with an equal
trial budget through `gnntrack.studies.sweep.run_sweep` (objective: steps to reach the target,
a penalty when it is not reached), then the best setting is trained to the target again with
`study.repeat_seeds` (fresh seeds, so the tuning seed does not bias the estimate). Each run
records the steps, examples (graphs), epochs and wall time to the target, the real edges per
step and the gradient noise scale B_simple (McCandlish et al. 2018) from the per-step gradient
norms of the training step. The fit S(B) = S_min (1 + B_crit / B) gives S_min, E_min and B_crit
(`gnntrack.studies.batch_fit`).

Two training back ends take the same run config:
  fast: `train_to_target` below, built from the training core (DataParallel, make_train_step,
    batch_iterator). Data, padded batches and compiled steps are cached in-process, and the
    learning rate and warmup live in the optimizer STATE (`scale_by_runtime_schedule`), so the
    trials of one point reuse one compiled step. It evaluates on a geometric schedule (every
    `eval_rel` x step, so steps-to-target has a fixed relative resolution).
  loop: `gnntrack.train.loop.train_and_evaluate` with a report_fn that stops at the target
    (checkpoints, TensorBoard and test evaluation included; slower, for real data).

Layout of the study directory W:
  config.json                     the study config (as run)
  data/toy-<key>/                 toy graphs (when study.toy.enabled)
  points/<opt>/bs<B>/sweep/       the tuning sweep (study.db, trials/trial_XXXX run dirs)
  points/<opt>/bs<B>/seed<k>/     repeat runs (result.json, metrics.jsonl)
  points/<opt>/bs<B>/point.json   the finished point (written last, atomically: resume skips it)
  curves/<opt>/bs<B>_warmup<W>/   curve runs (small vs large batch, with/without warmup)
  results.csv, results.md, results.json, fit.json, *.png
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import math
import os
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Mapping, NamedTuple

import ml_collections
import numpy as np

from gnntrack.config import save_config
from gnntrack.errors import ConfigError
from gnntrack.io.atomic import write_json_atomic, write_text_atomic

RESULT_FILE = "result.json"
METRICS_FILE = "metrics.jsonl"
POINT_FILE = "point.json"
BACKENDS = ("fast", "loop")
FAST_METRICS = ("val_f1", "val_precision", "val_recall", "val_accuracy", "val_loss")


# =============================================================================================
# Configuration
# =============================================================================================

def default_toy_data_config() -> ml_collections.ConfigDict:
    """Planes-toy data for studies (`study.toy`): events -> graphs, written once under W/data.

    Keys:
      enabled: generate toy graphs and point the run config at them (data.source='graphs').
      n_events: events generated (split into data.n_train / n_val / n_test in event order).
      seed: generator seed.
      n_tracks_min, n_tracks_max: tracks per event drawn uniformly (varied graph sizes make the
        like-sized batching and the straggler ratio meaningful).
      planes: `gnntrack.detector.toy.default_toy_config()` (n_tracks is overridden per event).
      graph: graph-building overrides applied to the run's `graph` config (selection 'all').
    """
    from gnntrack.detector.toy import default_toy_config

    planes = default_toy_config()
    planes.n_planes = 6
    planes.curved = True
    planes.curvature_max = 7.0e-4
    planes.noise_fraction = 0.1
    planes.sigma = 0.5
    return ml_collections.ConfigDict(dict(enabled=True, n_events=600, seed=7, n_tracks_min=2,
                                          n_tracks_max=6, planes=planes))


def default_batch_study_config() -> ml_collections.ConfigDict:
    """The `study` section of a batch-size study (every key with its default).

    Keys:
      kind: 'batch_size'.
      backend: 'fast' | 'loop' (see module docstring).
      toy: `default_toy_data_config()`.
      batch_sizes: global batch sizes in graphs per step.
      optimizers: optimizer names (`optimizer.name`): adam, sgd (momentum from optimizer.momentum),
        lamb, lars.
      lr_range: {optimizer: (low, high)} learning-rate search range (log scale).
      sampler: 'grid' (default): lr_grid_points log-spaced LRs x warmup {0, warmup_max}, every
        combination tried at every point; 'random' | 'tpe': `trials` draws of LR (log-uniform)
        and warmup in {0, warmup_step, ..., warmup_max}.
      trials, tpe_startup_trials, sweep_seed: budget and seeds of the random / tpe samplers
        (equal budget at every point in all cases).
      target_metric, target_value, target_mode ('max' | 'min'): the validation target.
      max_steps, min_steps, max_examples: step budget of a run at batch size B:
        clip(ceil(max_examples / B), min_steps, max_steps).
      eval_rel, eval_min_every: fast back end: evaluate at step s, then at
        s + max(eval_min_every, floor(eval_rel * s)) (relative resolution of steps-to-target).
      eval_points: loop back end: evaluations per run (train.eval_every = budget / eval_points).
      repeat_seeds: seeds of the repeat runs at every point (>= 3 for mean +- std).
      noise_decay: EMA decay of the B_simple tracker.
      curve_optimizers, curve_batch_sizes (empty: smallest and largest), curve_warmup,
        curve_steps_factor: curve runs train the tuned LR with warmup 0 and curve_warmup for
        curve_steps_factor x the point's steps-to-target (at least min_steps).
      workers: local sweep worker processes.
    """
    c = ml_collections.ConfigDict()
    c.kind = "batch_size"
    c.backend = "fast"
    c.toy = default_toy_data_config()
    c.batch_sizes = (1, 2, 4, 8, 16, 32, 64)
    c.optimizers = ("adam", "sgd", "lamb", "lars")
    c.lr_range = ml_collections.ConfigDict(dict(adam=(1.5e-3, 4e-2), adamw=(1.5e-3, 4e-2), sgd=(1e-2, 0.3),
                                                lamb=(2e-3, 6e-2), lars=(0.3, 10.0)))
    c.warmup_max = 40
    c.warmup_step = 10
    c.lr_grid_points = 4
    c.trials = 6
    c.sampler = "grid"
    c.tpe_startup_trials = 4
    c.sweep_seed = 0
    c.target_metric = "val_f1"
    c.target_value = 0.88
    c.target_mode = "max"
    c.max_steps = 1000
    c.min_steps = 300
    c.max_examples = 8000
    c.eval_rel = 0.05
    c.eval_min_every = 1
    c.eval_points = 40
    c.repeat_seeds = (1, 2, 3)
    c.noise_decay = 0.9
    c.curve_optimizers = ("adam",)
    c.curve_batch_sizes = ()
    c.curve_warmup = 40
    c.curve_steps_factor = 2.0
    c.workers = 1
    return c


@dataclasses.dataclass(frozen=True)
class Target:
    """The validation target: `metric` reaches `value` ('max': >=, 'min': <=)."""

    metric: str = "val_f1"
    value: float = 0.9
    mode: str = "max"

    def __post_init__(self):
        if self.mode not in ("max", "min"):
            raise ConfigError(f"config key 'study.target_mode' must be 'max' or 'min', got {self.mode!r}")

    def reached(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        return value >= self.value if self.mode == "max" else value <= self.value

    def gap(self, value: float) -> float:
        """Relative shortfall (>= 0) of `value` from the target (1 for a non-finite value)."""
        if not math.isfinite(value):
            return 1.0
        diff = (self.value - value) if self.mode == "max" else (value - self.value)
        return float(min(1.0, max(0.0, diff / max(abs(self.value), 1e-12))))


def step_budget(study: ml_collections.ConfigDict, batch_size: int) -> int:
    """Steps a run at `batch_size` may take: clip(ceil(max_examples / B), min_steps, max_steps)."""
    return int(min(int(study.max_steps), max(int(study.min_steps),
                                             math.ceil(float(study.max_examples) / batch_size))))


def split_study_config(config: ml_collections.ConfigDict
                       ) -> tuple[ml_collections.ConfigDict, ml_collections.ConfigDict]:
    """(base run config without `study`, study section validated against the defaults)."""
    base, merged = split_study_section(config, default_batch_study_config)
    if merged.backend not in BACKENDS:
        raise ConfigError(f"config key 'study.backend' must be one of {', '.join(BACKENDS)}, got {merged.backend!r}")
    if not merged.batch_sizes or any(int(b) < 1 for b in merged.batch_sizes):
        raise ConfigError(f"config key 'study.batch_sizes' must list positive integers, got {merged.batch_sizes}")
    for name in merged.optimizers:
        if name not in merged.lr_range:
            raise ConfigError(f"config key 'study.lr_range' has no range for optimizer {name!r}")
        low, high = merged.lr_range[name]
        if not 0 < low < high:
            raise ConfigError(f"config key 'study.lr_range.{name}' must be (low, high) with 0 < low < high")
    if int(merged.trials) < 1:
        raise ConfigError("config key 'study.trials' must be >= 1")
    if merged.sampler not in ("grid", "random", "tpe"):
        raise ConfigError(f"config key 'study.sampler' must be grid, random or tpe, got {merged.sampler!r}")
    if int(merged.lr_grid_points) < 1:
        raise ConfigError("config key 'study.lr_grid_points' must be >= 1")
    Target(merged.target_metric, float(merged.target_value), merged.target_mode)
    return base, merged


def split_study_section(config: ml_collections.ConfigDict, defaults: Callable[[], ml_collections.ConfigDict]
                        ) -> tuple[ml_collections.ConfigDict, ml_collections.ConfigDict]:
    """(base run config: a copy of `config` without `study`, the `study` section merged over
    `defaults()`). ConfigError when the section is missing or holds a key `defaults()` lacks;
    each study then checks its own values."""
    from gnntrack.config import check_known_keys

    if "study" not in config:
        raise ConfigError(f"the experiment config has no 'study' section (see "
                          f"{defaults.__module__}.{defaults.__name__}())")
    study = ml_collections.ConfigDict(config.study.to_dict())
    check_known_keys(study, defaults(), where="study")
    merged = defaults()
    _merge(merged, study)
    base = ml_collections.ConfigDict({k: copy.deepcopy(config[k].to_dict() if isinstance(
        config[k], ml_collections.ConfigDict) else config[k]) for k in config.keys() if k != "study"})
    return base, merged


def _merge(dst: ml_collections.ConfigDict, src: ml_collections.ConfigDict) -> None:
    for key in src.keys():
        if isinstance(src[key], ml_collections.ConfigDict) and isinstance(dst.get(key), ml_collections.ConfigDict):
            _merge(dst[key], src[key])
        else:
            with dst.ignore_type():
                dst[key] = src[key]


# =============================================================================================
# Toy data
# =============================================================================================

def toy_graph_dir(toy: ml_collections.ConfigDict, graph_config: ml_collections.ConfigDict, root: Path,
                  *, progress: bool = True) -> Path:
    """Directory of planes-toy graph files (one per event), built once and cached by a key of
    everything that determines it (`root/toy-<key>/`; a half-built one is redone)."""
    import shutil
    import tempfile

    from tqdm import tqdm

    from gnntrack.detector.toy import planes_detector, simulate_toy_event, validate_toy_config
    from gnntrack.graphs.build import build_event_graphs
    from gnntrack.graphs.store import graph_file_name, save_graph
    from gnntrack.train.data import config_key

    validate_toy_config(toy.planes, "study.toy.planes")
    if not 1 <= int(toy.n_tracks_min) <= int(toy.n_tracks_max):
        raise ConfigError("config keys 'study.toy.n_tracks_min/max' need 1 <= min <= max")
    key = config_key("toy", toy, graph_config)
    final = Path(root) / f"toy-{key}"
    if final.is_dir():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        rng = np.random.default_rng(int(toy.seed))
        planes = ml_collections.ConfigDict(toy.planes.to_dict())
        detector = planes_detector(planes)
        for event in tqdm(range(int(toy.n_events)), desc="toy graphs", unit="event", disable=not progress,
                          dynamic_ncols=True):
            planes.n_tracks = int(rng.integers(int(toy.n_tracks_min), int(toy.n_tracks_max) + 1))
            ev = simulate_toy_event(rng, planes, event_id=1000 + event)
            for g in build_event_graphs(ev, graph_config, detector=detector):
                save_graph(g, tmp / graph_file_name(g.event_id, g.section))
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def apply_toy_data(base: ml_collections.ConfigDict, study: ml_collections.ConfigDict, workdir: Path,
                   *, progress: bool = True) -> ml_collections.ConfigDict:
    """Generates the toy graphs (if enabled) and points `base.data` at them (a copy)."""
    base = ml_collections.ConfigDict(base.to_dict())
    if not study.toy.enabled:
        return base
    needed = int(base.data.n_train) + int(base.data.n_val) + max(int(base.data.n_test), 0)
    if int(study.toy.n_events) < needed:
        raise ConfigError(f"config key 'study.toy.n_events'={study.toy.n_events} is fewer than "
                          f"data.n_train + n_val + n_test = {needed}")
    graph_dir = toy_graph_dir(study.toy, base.graph, workdir / "data", progress=progress)
    base.data.source = "graphs"
    base.data.input_dir = str(graph_dir.resolve())
    return base


# =============================================================================================
# Runtime learning-rate schedule (the LR lives in the optimizer state: no recompilation)
# =============================================================================================

class RuntimeScheduleState(NamedTuple):
    """count: updates done; lr: peak learning rate; warmup: warmup steps; init_factor: the
    warmup starts at init_factor * lr (all scalars, so new values need no recompilation)."""

    count: Any
    lr: Any
    warmup: Any
    init_factor: Any


def schedule_factor(count, warmup, init_factor):
    """Linear warmup factor (optax.linear_schedule semantics), 1 after `warmup` updates."""
    import jax.numpy as jnp

    frac = jnp.minimum(count.astype(jnp.float32) / jnp.maximum(warmup, 1.0), 1.0)
    return jnp.where(warmup > 0, init_factor + (1.0 - init_factor) * frac, 1.0)


def scale_by_runtime_schedule():
    """optax transformation: updates *= lr * warmup_factor(count), with lr/warmup in the state."""
    import jax
    import jax.numpy as jnp
    import optax

    def init(params):
        del params
        return RuntimeScheduleState(count=jnp.zeros([], jnp.int32), lr=jnp.ones([], jnp.float32),
                                    warmup=jnp.zeros([], jnp.float32), init_factor=jnp.zeros([], jnp.float32))

    def update(updates, state, params=None):
        del params
        scale = state.lr * schedule_factor(state.count, state.warmup, state.init_factor)
        updates = jax.tree_util.tree_map(lambda u: (scale * u).astype(u.dtype), updates)
        return updates, state._replace(count=state.count + 1)

    return optax.GradientTransformation(init, update)


def unit_optimizer_config(opt: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The optimizer config with lr 1 and a constant schedule (the runtime schedule scales it)."""
    unit = ml_collections.ConfigDict(opt.to_dict())
    unit.lr = 1.0
    unit.schedule = "constant"
    unit.warmup_steps = 0
    unit.scaling_rule = "none"
    return unit


def runtime_schedule_values(opt: ml_collections.ConfigDict, global_batch_size: int) -> tuple[float, int, float]:
    """(peak lr after the scaling rule, warmup steps, warmup init factor) for the fast back end.

    Supported schedules: constant, and warmup_exponential with decay_rate 1 (warmup then
    constant); others raise ConfigError (use study.backend='loop')."""
    from gnntrack.train.optim import scaled_learning_rate

    if opt.schedule == "constant":
        warmup = 0
    elif opt.schedule == "warmup_exponential" and float(opt.decay_rate) == 1.0:
        warmup = int(opt.warmup_steps)
    else:
        raise ConfigError("the fast study back end supports optimizer.schedule 'constant' or "
                          "'warmup_exponential' with decay_rate=1.0 (warmup, then constant); got "
                          f"{opt.schedule!r} (decay_rate={opt.decay_rate}); use study.backend='loop'")
    if int(opt.accumulation_steps) != 1:
        raise ConfigError("the fast study back end needs optimizer.accumulation_steps=1; use study.backend='loop'")
    return scaled_learning_rate(opt, global_batch_size), warmup, float(opt.warmup_init_factor)


def set_runtime_schedule(opt_state, lr: float, warmup: int, init_factor: float):
    """Returns an optax.chain state whose LAST element (the runtime schedule) holds new values."""
    import jax.numpy as jnp

    last = opt_state[-1]
    if not isinstance(last, RuntimeScheduleState):
        raise TypeError("optimizer state does not end with a RuntimeScheduleState")
    new = RuntimeScheduleState(count=jnp.zeros([], jnp.int32), lr=jnp.asarray(lr, jnp.float32),
                               warmup=jnp.asarray(float(warmup), jnp.float32),
                               init_factor=jnp.asarray(init_factor, jnp.float32))
    return (*opt_state[:-1], new)


# =============================================================================================
# Fast trainer: in-process caches
# =============================================================================================

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


def _splits(config: ml_collections.ConfigDict, workdir: Path):
    from gnntrack.train.data import prepare_data

    return _SPLITS.get_or(_key(config.data, config.graph),
                          lambda: prepare_data(config, workdir, progress=False))


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
    warm: bool = False


def _engine(config: ml_collections.ConfigDict, train_graphs, data_key: str) -> _Engine:
    import jax

    from gnntrack.graphs.batching import make_ladder
    from gnntrack.nn.models import build_model
    from gnntrack.train.losses import resolve_loss_config
    from gnntrack.train.optim import make_optimizer
    from gnntrack.train.parallel import DataParallel
    from gnntrack.train.step import make_eval_step, make_train_step

    def make() -> _Engine:
        import jax.numpy as jnp

        dp = DataParallel(config.parallel)
        model = build_model(config.model)
        loss_cfg = resolve_loss_config(config.loss, (g.y for g in train_graphs))
        unit_tx, _ = make_optimizer(unit_optimizer_config(config.optimizer),
                                    global_batch_size=int(config.batching.graphs_per_step))
        import optax

        tx = optax.chain(unit_tx, scale_by_runtime_schedule())
        ladder = make_ladder(train_graphs, config.batching, dp.n_devices, seed=0)
        p_train = dp.train_step(make_train_step(model, tx, loss_cfg, dp.axis_name))
        p_eval = dp.eval_step(make_eval_step(model, loss_cfg))
        def init_state(seed, graph, lr, warmup, init_factor):
            # one compiled init (params, optimizer state, schedule values) instead of op-by-op dispatch
            from gnntrack.train.state import TrainState

            init_rng, state_rng = jax.random.split(jax.random.PRNGKey(seed))
            params = model.init(init_rng, graph, train=False)["params"]
            state = TrainState.create(params, tx, state_rng)
            sched = RuntimeScheduleState(count=jnp.zeros([], jnp.int32), lr=lr, warmup=warmup, init_factor=init_factor)
            return state.replace(opt_state=(*state.opt_state[:-1], sched))

        return _Engine(model, tx, dp, ladder, loss_cfg, p_train, p_eval, jax.jit(init_state))

    opt = unit_optimizer_config(config.optimizer)
    key = _key(data_key, config.model, opt, config.loss, config.batching, config.parallel)
    return _ENGINES.get_or(key, make)


@dataclasses.dataclass
class _HostBatch:
    device: Any            # DeviceBatch placed on the devices
    n_real_edges: np.ndarray
    n_graphs: int
    padded_edges: int


def _epoch_batches(engine: _Engine, train_graphs, config, data_key: str, seed: int, epoch: int) -> list[_HostBatch]:
    from gnntrack.graphs.batching import batch_iterator

    def make():
        out = []
        for b in batch_iterator(train_graphs, config.batching, engine.dp.n_devices, ladder=engine.ladder,
                                seed=seed, epoch=epoch):
            out.append(_HostBatch(engine.dp.put_batch(b), np.asarray(b.n_real_edges), int(b.n_graphs),
                                  int(b.shape[0] * b.shape[2])))
        return out

    key = _key(data_key, config.batching, engine.dp.n_devices, engine.ladder.to_dict(), seed, epoch)
    return _EPOCHS.get_or(key, make)


def _val_batches(engine: _Engine, val_graphs, config, data_key: str):
    """[(DeviceBatch, y [D, E_pad], edge_mask [D, E_pad])] covering every val graph once."""
    from gnntrack.graphs.batching import batch_iterator, make_ladder
    from gnntrack.train.evaluation import eval_batching_config

    def make():
        cfg = eval_batching_config(config.batching, len(val_graphs))
        cfg.graphs_per_step = len(val_graphs)  # one step: one compiled eval shape
        cfg.max_buckets = 1
        ladder = make_ladder(val_graphs, cfg, engine.dp.n_devices)
        return [(engine.dp.put_batch(b), np.asarray(b.y), np.asarray(b.edge_mask))
                for b in batch_iterator(val_graphs, cfg, engine.dp.n_devices, ladder=ladder, shuffle=False,
                                        drop_remainder=False)]

    return _VAL.get_or(_key(data_key, config.batching, engine.dp.n_devices), make)


def binary_metrics(scores: np.ndarray, labels: np.ndarray, mask: np.ndarray, loss_sum: float,
                   prefix: str = "val_") -> dict[str, float]:
    """F1, precision, recall, accuracy at threshold 0.5 and the mean loss over real edges.

    Args: scores, labels, mask: [..., E_pad] arrays (mask True on real edges); loss_sum: summed
    weighted BCE over the real edges."""
    mask = mask.astype(bool)
    pred = (scores > 0.5) & mask
    true = (labels > 0.5) & mask
    tp = float(np.sum(pred & true))
    fp = float(np.sum(pred & ~true))
    fn = float(np.sum(~pred & true & mask))
    n = float(mask.sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    accuracy = (n - fp - fn) / n if n else float("nan")
    return {f"{prefix}f1": f1, f"{prefix}precision": precision, f"{prefix}recall": recall,
            f"{prefix}accuracy": accuracy, f"{prefix}loss": loss_sum / n if n else float("nan")}


def _evaluate(engine: _Engine, state, val) -> dict[str, float]:
    import jax

    scores, ys, masks, loss = [], [], [], 0.0
    for batch, y, mask in val:
        out = jax.device_get(engine.p_eval(state, batch))
        scores.append(np.asarray(out["scores"]))
        ys.append(y)
        masks.append(mask)
        loss += float(np.sum(out["loss_sum"]))
    return binary_metrics(np.concatenate([s.ravel() for s in scores]), np.concatenate([y.ravel() for y in ys]),
                          np.concatenate([m.ravel() for m in masks]), loss)


def _init_state(engine: _Engine, example_graph, seed: int, lr: float, warmup: int, init_factor: float):
    """Fresh state (same values as gnntrack.train.state.init_train_state(seed)) with the runtime
    schedule set, placed on the devices."""
    state = engine.init_state(np.int32(seed), example_graph, np.float32(lr), np.float32(warmup),
                              np.float32(init_factor))
    if engine.dp.mode == "shard_map":
        # a fresh state owned by nobody else: place it without DataParallel.put_state's defensive
        # per-leaf copies (each a small compilation)
        import jax
        from jax.sharding import NamedSharding, PartitionSpec as P

        return jax.device_put(state, NamedSharding(engine.dp.mesh, P()))
    return engine.dp.put_state(state)


def eval_schedule(budget: int, rel: float, min_every: int) -> list[int]:
    """Steps at which the fast trainer evaluates: s_{k+1} = s_k + max(min_every, floor(rel s_k)),
    from s_0 = min_every, and always the last step `budget`."""
    steps, s = [], max(1, int(min_every))
    while s < budget:
        steps.append(s)
        s += max(int(min_every), int(math.floor(rel * s)), 1)
    steps.append(int(budget))
    return steps


# =============================================================================================
# Fast trainer
# =============================================================================================

def train_to_target(config: ml_collections.ConfigDict, workdir: str | os.PathLike, *,
                    report_fn: Callable[[int, dict], bool] | None = None, resume: bool = True,
                    target: Target | None = None, eval_rel: float = 0.05, eval_min_every: int = 1,
                    noise_decay: float = 0.9, stop_at_target: bool = True) -> dict[str, Any]:
    """Trains `config` until the validation target is reached or `config.train.steps` are done.

    The signature matches the sweep's train function (`run_sweep(train_fn=functools.partial(
    train_to_target, target=...))`). Writes `metrics.jsonl` (train records every
    `config.train.log_every` steps with loss, lr, gradient norms and B_simple; a val record at
    every evaluation) and `result.json`, both atomically at the end; with resume=True an existing
    result.json is returned as is (runs are short: an interrupted run starts over).

    Returns:
      dict: reached (bool), steps_to_target (int or None), examples_to_target (graphs),
      epochs_to_target, wall_to_target_s (training time without evaluations / compilation),
      objective (steps_to_target, or budget * (2 + relative gap) when not reached: the sweep
      minimises it), steps, budget, batch_size, lr, warmup_steps, best `val_*` and final `val_*`
      metrics, edges_per_step (mean real edges per step), padded_edges_per_step, b_simple_edges
      and b_simple_graphs (final EMA estimate; nan on one device), diverged, seed.
    """
    import jax
    from gnntrack.studies.noise_scale import NoiseScaleTracker, step_measurement
    from gnntrack.train.defaults import validate_config

    workdir = Path(workdir)
    result_path = workdir / RESULT_FILE
    if resume and result_path.exists():
        return json.loads(result_path.read_text())
    config = ml_collections.ConfigDict(config.to_dict())
    validate_config(config)
    target = target or Target()
    if target.metric not in FAST_METRICS:
        raise ConfigError(f"config key 'study.target_metric'={target.metric!r}: the fast back end measures "
                          f"{', '.join(FAST_METRICS)}")
    workdir.mkdir(parents=True, exist_ok=True)
    save_config(config, workdir)
    splits = _splits(config, workdir)
    train_graphs, val_graphs = splits.train, splits.val
    if not val_graphs:
        raise ConfigError("a steps-to-target run needs validation graphs (data.n_val > 0)")
    data_key = _key(config.data, config.graph)
    engine = _engine(config, train_graphs, data_key)
    bs = int(config.batching.graphs_per_step)
    from gnntrack.graphs.batching import steps_per_epoch

    per_epoch = steps_per_epoch(len(train_graphs), config.batching)
    if per_epoch < 1:
        raise ConfigError(f"{len(train_graphs)} training graphs give no full step of batching.graphs_per_step={bs}")
    budget = int(config.train.steps)
    seed = int(config.seed)
    lr, warmup, init_factor = runtime_schedule_values(config.optimizer, bs)
    val = _val_batches(engine, val_graphs, config, data_key)
    first = _epoch_batches(engine, train_graphs, config, data_key, seed, 0)
    example = jax.tree_util.tree_map(lambda x: np.asarray(x)[0], first[0].device.graph)
    if not engine.warm:  # compile train (every bucket shape) + eval once, outside run timings
        scratch = _init_state(engine, example, seed, lr, warmup, init_factor)
        shapes = {}
        for hb in first:
            shapes.setdefault(jax.tree_util.tree_map(np.shape, hb.device).__repr__(), hb)
        for hb in shapes.values():
            scratch, m = engine.p_train(scratch, hb.device)
        _evaluate(engine, scratch, val)
        jax.block_until_ready(m)
        del scratch
        engine.warm = True
    state = _init_state(engine, example, seed, lr, warmup, init_factor)

    tracker = NoiseScaleTracker(decay=float(noise_decay))
    records: list[dict] = []
    log_every = max(1, int(config.train.log_every))
    evals = eval_schedule(budget, float(eval_rel), int(eval_min_every))
    pending: list[Any] = []
    edges_total = padded_total = graphs_total = 0
    train_seconds = eval_seconds = 0.0
    best: dict[str, float] = {}
    last_val: dict[str, float] = {}
    reached_step = None
    reached_wall = None
    diverged = pruned = False
    loss_window: list[float] = []
    step = 0
    t_phase = time.perf_counter()
    t_start = t_phase
    eval_iter = iter(evals)
    next_eval = next(eval_iter)
    mean_edges_per_graph = float(np.mean([g.n_edges for g in train_graphs]))

    batches, batches_epoch = first, 0
    while step < budget:
        epoch, pos = divmod(step, per_epoch)
        if epoch != batches_epoch:  # (the cache lookup hashes the config: once per epoch)
            batches, batches_epoch = _epoch_batches(engine, train_graphs, config, data_key, seed, epoch), epoch
        hb = batches[pos]
        state, metrics = engine.p_train(state, hb.device)
        step += 1
        pending.append(metrics)
        edges_total += int(hb.n_real_edges.sum())
        padded_total += hb.padded_edges
        graphs_total += hb.n_graphs
        if step != next_eval and step < budget:
            continue
        # --- evaluation point: fetch the pending step metrics (one sync), then validate --------
        host = jax.device_get(pending)
        train_seconds += time.perf_counter() - t_phase
        first_step = step - len(host) + 1
        for i, m in enumerate(host):
            s = first_step + i
            m = {k: float(np.asarray(v)) for k, v in m.items()}
            loss_window.append(m["loss"])
            if not math.isfinite(m["loss"]):
                diverged = True
                break
            row = step_measurement(m)
            if row is not None:
                tracker.update(*row)
            if s % log_every == 0 or s == step:
                factor = float(schedule_factor(np.asarray(s - 1), np.float32(warmup), np.float32(init_factor)))
                b_edges = tracker.value
                records.append({
                    "step": s, "epoch": (s - 1) // per_epoch, "loss": float(np.mean(loss_window)),
                    "lr": lr * factor, "grad_norm": m["grad_norm"],
                    "grad_norm_sq_local": m["grad_norm_sq_local"], "grad_norm_sq_global": m["grad_norm_sq_global"],
                    "B_small": m["B_small"], "B_big": m["B_big"], "b_simple_edges": b_edges,
                    "b_simple_graphs": b_edges / mean_edges_per_graph if math.isfinite(b_edges) else float("nan"),
                    "train_s": train_seconds})
                loss_window = []
        pending = []
        if diverged:
            break
        t_eval = time.perf_counter()
        val_m = _evaluate(engine, state, val)
        eval_seconds += time.perf_counter() - t_eval
        last_val = val_m
        records.append({"step": step, **val_m, "train_s": train_seconds, "wall_s": time.perf_counter() - t_start})
        value = val_m[target.metric]
        if math.isfinite(value) and (not best or (value > best[target.metric] if target.mode == "max"
                                                  else value < best[target.metric])):
            best = dict(val_m)
        if reached_step is None and target.reached(value):
            reached_step, reached_wall = step, train_seconds
        if report_fn is not None and report_fn(step, val_m):
            pruned = True
        if pruned or (reached_step is not None and stop_at_target):
            break
        next_eval = next(eval_iter, budget)
        t_phase = time.perf_counter()

    reached = reached_step is not None
    final_value = best.get(target.metric, float("nan"))
    objective = float(reached_step) if reached else unreached_objective(budget, target, final_value,
                                                                        best.get("val_loss", float("nan")))
    b_edges = tracker.value
    result = {
        "reached": reached, "steps_to_target": reached_step,
        "examples_to_target": reached_step * bs if reached else None,
        "epochs_to_target": reached_step * bs / len(train_graphs) if reached else None,
        "wall_to_target_s": reached_wall, "objective": objective, "target_metric": target.metric,
        "target_value": target.value, "steps": step, "budget": budget, "batch_size": bs,
        "n_devices": engine.dp.n_devices, "optimizer": config.optimizer.name, "lr": lr,
        "warmup_steps": warmup, "seed": seed, "diverged": diverged, "pruned": pruned,
        "n_train_graphs": len(train_graphs), "n_val_graphs": len(val_graphs),
        "edges_per_step": edges_total / max(step, 1), "padded_edges_per_step": padded_total / max(step, 1),
        "graphs_per_step": graphs_total / max(step, 1), "mean_edges_per_graph": mean_edges_per_graph,
        "train_seconds": train_seconds, "eval_seconds": eval_seconds,
        "b_simple_edges": b_edges,
        "b_simple_graphs": b_edges / mean_edges_per_graph if math.isfinite(b_edges) else float("nan"),
        **{f"best_{k}": v for k, v in best.items()}, **last_val,
    }
    write_text_atomic(workdir / METRICS_FILE, "".join(json.dumps(_clean(r)) + "\n" for r in records))
    write_json_atomic(result_path, _clean(result))
    return _clean(result)


def unreached_objective(budget: int, target: Target, best_value: float, best_loss: float) -> float:
    """Sweep objective of a run that missed the target: above any reached run (> budget steps),
    ordered by the relative gap to the target and, as a tie-breaker (e.g. F1 still 0 for every
    trial), by the best validation loss."""
    loss_term = 0.1 * math.tanh(best_loss) if math.isfinite(best_loss) else 0.1
    return float(budget) * (2.0 + target.gap(best_value) + loss_term)


def _clean(d: Mapping[str, Any]) -> dict:
    """JSON-safe copy: numpy scalars -> Python, non-finite floats -> None."""
    out = {}
    for k, v in d.items():
        if isinstance(v, (np.floating, float)):
            v = float(v)
            out[k] = v if math.isfinite(v) else None
        elif isinstance(v, np.integer):
            out[k] = int(v)
        elif isinstance(v, np.bool_):
            out[k] = bool(v)
        else:
            out[k] = v
    return out


# =============================================================================================
# Loop back end (train_and_evaluate with a stop-at-target report_fn)
# =============================================================================================

def loop_to_target(config: ml_collections.ConfigDict, workdir: str | os.PathLike, *,
                   report_fn: Callable[[int, dict], bool] | None = None, resume: bool = True,
                   target: Target | None = None, noise_decay: float = 0.9, stop_at_target: bool = True
                   ) -> dict[str, Any]:
    """Like `train_to_target`, through `gnntrack.train.loop.train_and_evaluate` (checkpoints,
    resume, TensorBoard). Steps-to-target has the resolution of train.eval_every; B_simple comes
    from the logged train records of metrics.jsonl (`noise_scale_from_metrics`)."""
    from gnntrack.train.loop import train_and_evaluate

    workdir = Path(workdir)
    if resume and (workdir / RESULT_FILE).exists():
        done = json.loads((workdir / RESULT_FILE).read_text())
        if "reached" in done:
            return done
    target = target or Target()
    hit: dict[str, Any] = {"step": None, "train_s": None}
    t0 = time.perf_counter()

    def stop(step: int, val: dict) -> bool:
        if hit["step"] is None and target.reached(float(val.get(target.metric, float("nan")))):
            hit.update(step=int(step), train_s=time.perf_counter() - t0)
        outer = report_fn(step, val) if report_fn is not None else False
        return bool(outer) or (stop_at_target and hit["step"] is not None)

    result = dict(train_and_evaluate(config, workdir, report_fn=stop, resume=resume))
    bs = int(config.batching.graphs_per_step)
    n_train = int(result.get("n_train_graphs") or 0) or 1
    reached = hit["step"] is not None
    budget = int(config.train.steps)
    value = float(result.get(target.metric, float("nan")) if result.get(target.metric) is not None else float("nan"))
    curve = noise_scale_from_metrics(workdir / METRICS_FILE, decay=noise_decay)
    b_edges = float(curve["b_simple_edges"].iloc[-1]) if len(curve) else float("nan")
    # real edges per step from the logged train records (edges/s over steps/s of each window)
    rates = [(r["edges_per_s"], r["steps_per_s"]) for r in _read_records(workdir / METRICS_FILE)
             if r.get("edges_per_s") and r.get("steps_per_s")]
    edges_per_step = float(np.mean([e / s for e, s in rates])) if rates else float("nan")
    edges_per_graph = edges_per_step / bs if math.isfinite(edges_per_step) else float("nan")
    result.update({
        "reached": reached, "steps_to_target": hit["step"],
        "examples_to_target": hit["step"] * bs if reached else None,
        "epochs_to_target": hit["step"] * bs / n_train if reached else None,
        "wall_to_target_s": hit["train_s"],
        "objective": float(hit["step"]) if reached else unreached_objective(
            budget, target, value, float(result.get("val_loss") or float("nan"))),
        "budget": budget, "batch_size": bs, "optimizer": config.optimizer.name,
        "lr": float(config.optimizer.lr), "warmup_steps": int(config.optimizer.warmup_steps),
        "seed": int(config.seed), "b_simple_edges": b_edges, "edges_per_step": edges_per_step,
        "b_simple_graphs": b_edges / edges_per_graph if edges_per_graph > 0 else float("nan"),
    })
    write_json_atomic(workdir / RESULT_FILE, _clean({k: v for k, v in result.items() if not isinstance(v, dict)}))
    return _clean({k: v for k, v in result.items() if not isinstance(v, dict)})


def _read_records(path: Path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def noise_scale_from_metrics(path: str | os.PathLike, decay: float = 0.9):
    """B_simple vs step from the train records of a metrics.jsonl (any gnntrack run).

    Uses the logged grad_norm_sq_local / grad_norm_sq_global / B_small / B_big (batch sizes in
    real edges) through `NoiseScaleTracker`; records from a single active device are skipped.
    Returns a DataFrame (step, b_simple_edges); empty when nothing usable was logged.
    """
    import pandas as pd

    from gnntrack.studies.noise_scale import NoiseScaleTracker, step_measurement

    path = Path(path)
    rows = []
    if path.exists():
        tracker = NoiseScaleTracker(decay=decay)
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            rec = json.loads(line)
            if not all(rec.get(k) is not None for k in ("grad_norm_sq_local", "grad_norm_sq_global", "B_small", "B_big")):
                continue
            row = step_measurement(rec)
            if row is None:
                continue
            rows.append({"step": int(rec["step"]), "b_simple_edges": tracker.update(*row)})
    return pd.DataFrame(rows, columns=["step", "b_simple_edges"])


# =============================================================================================
# The study
# =============================================================================================

def point_config(base: ml_collections.ConfigDict, study: ml_collections.ConfigDict, optimizer: str,
                 batch_size: int) -> ml_collections.ConfigDict:
    """The run config of one (optimizer, batch size) point (LR/warmup still the base values)."""
    config = ml_collections.ConfigDict(base.to_dict())
    config.optimizer.name = optimizer
    low, high = study.lr_range[optimizer]
    config.optimizer.lr = float(math.sqrt(float(low) * float(high)))  # the sweep's baseline trial
    config.batching.graphs_per_step = int(batch_size)
    config.train.steps = step_budget(study, batch_size)
    if study.backend == "loop":
        config.train.eval_every = max(1, config.train.steps // max(1, int(study.eval_points)))
        config.train.checkpoint_every = 0
    config.lock()
    return config


def search_space(study: ml_collections.ConfigDict, optimizer: str) -> list[dict]:
    from gnntrack.studies import search_space as ss

    low, high = study.lr_range[optimizer]
    if study.sampler == "grid":
        # the same log-spaced LR grid x {0, warmup_max} at every batch size (equal budget, and a
        # best-LR-vs-batch curve read off a common grid)
        grid = [float(x) for x in np.geomspace(float(low), float(high), int(study.lr_grid_points))]
        space = [ss.log_uniform("optimizer.lr", float(low), float(high), grid=grid)]
        if int(study.warmup_max) > 0:
            space.append(ss.choice("optimizer.warmup_steps", [0, int(study.warmup_max)]))
        return space
    space = [ss.log_uniform("optimizer.lr", float(low), float(high))]
    if int(study.warmup_max) > 0:
        space.append(ss.int_range("optimizer.warmup_steps", 0, int(study.warmup_max),
                                  step=max(1, int(study.warmup_step))))
    return space


def n_trials(study: ml_collections.ConfigDict) -> int:
    """Tuning trials per point: the grid size for sampler 'grid', else study.trials."""
    if study.sampler == "grid":
        return int(study.lr_grid_points) * (2 if int(study.warmup_max) > 0 else 1)
    return int(study.trials)


def study_train_fn(study: ml_collections.ConfigDict, *, stop_at_target: bool = True) -> Callable:
    """The train function of the study's back end with the target bound (picklable partial)."""
    target = Target(study.target_metric, float(study.target_value), study.target_mode)
    if study.backend == "loop":
        return functools.partial(loop_to_target, target=target, noise_decay=float(study.noise_decay),
                                 stop_at_target=stop_at_target)
    return functools.partial(train_to_target, target=target, eval_rel=float(study.eval_rel),
                             eval_min_every=int(study.eval_min_every), noise_decay=float(study.noise_decay),
                             stop_at_target=stop_at_target)


def _point_dir(workdir: Path, optimizer: str, batch_size: int) -> Path:
    return workdir / "points" / optimizer / f"bs{int(batch_size):04d}"


def run_point(base: ml_collections.ConfigDict, study: ml_collections.ConfigDict, workdir: Path,
              optimizer: str, batch_size: int, *, progress: bool = True) -> dict[str, Any]:
    """Tunes LR + warmup at one point, then repeats the best setting; returns (and writes) point.json.
    A finished point (point.json present) is read back, not rerun."""
    from gnntrack.studies.sweep import run_sweep, trial_config

    pdir = _point_dir(workdir, optimizer, batch_size)
    done = pdir / POINT_FILE
    if done.exists():
        return json.loads(done.read_text())
    config = point_config(base, study, optimizer, batch_size)
    train_fn = study_train_fn(study)
    t0 = time.perf_counter()
    sweep = run_sweep(config, search_space(study, optimizer), pdir / "sweep", n_trials=n_trials(study),
                      sampler=study.sampler, pruner="none", metric="objective", direction="minimize",
                      seed=int(study.sweep_seed), train_fn=train_fn, workers=int(study.workers),
                      show_progress=False, tpe_startup_trials=int(study.tpe_startup_trials))
    tune_s = time.perf_counter() - t0
    params = dict(sweep.best_params)
    best_cfg = trial_config(config, params, None)
    repeats = []
    for seed in study.repeat_seeds:
        run_cfg = ml_collections.ConfigDict(best_cfg.to_dict())
        run_cfg.seed = int(seed)
        repeats.append(train_fn(run_cfg, str(pdir / f"seed{int(seed)}"), report_fn=None, resume=True))
    trials = sweep.trials_df
    point = {
        "optimizer": optimizer, "batch_size": int(batch_size), "budget": int(config.train.steps),
        "best_params": params, "best_objective": sweep.best_value, "tune_seconds": tune_s,
        "seconds": time.perf_counter() - t0,  # tuning + repeats (wall)
        "trials": json.loads(trials.to_json(orient="records")) if trials is not None else [],
        "repeats": repeats,
    }
    write_json_atomic(done, point)
    return point


def curve_runs(base: ml_collections.ConfigDict, study: ml_collections.ConfigDict, workdir: Path,
               points: Mapping[tuple[str, int], dict]) -> list[dict]:
    """Training curves at the smallest and largest batch (or study.curve_batch_sizes) with warmup
    0 and study.curve_warmup, at the point's tuned LR, for a fixed number of steps (no early stop).
    Returns [{optimizer, batch_size, warmup, run_dir}] of finished runs."""
    sizes = list(study.curve_batch_sizes) or sorted({min(study.batch_sizes), max(study.batch_sizes)})
    train_fn = study_train_fn(study, stop_at_target=False)
    out = []
    for optimizer in study.curve_optimizers:
        for bs in sizes:
            point = points.get((optimizer, int(bs)))
            if point is None:
                continue
            reached = [r["steps_to_target"] for r in point["repeats"] if r.get("steps_to_target")]
            steps = int(max(int(study.min_steps), math.ceil(float(study.curve_steps_factor) *
                                                           (np.median(reached) if reached else point["budget"] / 2))))
            for warmup in sorted({0, int(study.curve_warmup)}):
                cfg = ml_collections.ConfigDict(point_config(base, study, optimizer, bs).to_dict())
                cfg.optimizer.lr = float(point["best_params"].get("optimizer.lr", cfg.optimizer.lr))
                cfg.optimizer.warmup_steps = warmup
                cfg.train.steps = steps
                cfg.seed = int(study.repeat_seeds[0]) if len(study.repeat_seeds) else int(cfg.seed)
                run_dir = workdir / "curves" / optimizer / f"bs{int(bs):04d}_warmup{warmup}"
                train_fn(cfg, str(run_dir), report_fn=None, resume=True)
                out.append({"optimizer": optimizer, "batch_size": int(bs), "warmup": warmup,
                            "lr": cfg.optimizer.lr, "run_dir": str(run_dir)})
    return out


def results_frame(points: list[dict]):
    """One row per (optimizer, batch size, repeat seed)."""
    import pandas as pd

    rows = []
    for p in points:
        for r in p["repeats"]:
            rows.append({
                "optimizer": p["optimizer"], "batch_size": p["batch_size"], "seed": r.get("seed"),
                "reached": bool(r.get("reached")), "steps_to_target": r.get("steps_to_target"),
                "examples_to_target": r.get("examples_to_target"), "epochs_to_target": r.get("epochs_to_target"),
                "wall_to_target_s": r.get("wall_to_target_s"), "edges_per_step": r.get("edges_per_step"),
                "padded_edges_per_step": r.get("padded_edges_per_step"), "budget": p["budget"],
                "best_lr": p["best_params"].get("optimizer.lr"), "best_warmup": p["best_params"].get("optimizer.warmup_steps"),
                "tuning_objective": p.get("best_objective"),
                "tuning_reached": p.get("best_objective") is not None and p["best_objective"] <= p["budget"],
                "target_metric": r.get("target_metric"),
                "target_value": r.get("target_value"), "best_val": r.get(f"best_{r.get('target_metric')}"),
                "b_simple_graphs": r.get("b_simple_graphs"), "b_simple_edges": r.get("b_simple_edges"),
                "steps": r.get("steps"), "diverged": r.get("diverged"),
            })
    return pd.DataFrame(rows)


def summarise(df):
    """Mean / std per (optimizer, batch size) over the repeats that reached the target."""
    import pandas as pd

    rows = []
    for (opt, bs), g in df.groupby(["optimizer", "batch_size"], sort=True):
        ok = g[g.reached]
        row = {"optimizer": opt, "batch_size": int(bs), "n_runs": len(g), "n_reached": len(ok),
               "best_lr": g.best_lr.iloc[0], "best_warmup": g.best_warmup.iloc[0],
               "tuning_reached": bool(g.tuning_reached.iloc[0]),
               "edges_per_step": float(g.edges_per_step.mean()),
               "b_simple_graphs": float(pd.to_numeric(g.b_simple_graphs, errors="coerce").median())}
        for col in ("steps_to_target", "examples_to_target", "epochs_to_target", "wall_to_target_s"):
            vals = pd.to_numeric(ok[col], errors="coerce").dropna().to_numpy(float)
            row[f"{col}_mean"] = float(vals.mean()) if len(vals) else float("nan")
            row[f"{col}_std"] = float(vals.std(ddof=1)) if len(vals) > 1 else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


def fit_summary(summary) -> dict[str, dict]:
    """{optimizer: {s_min, e_min, b_crit, rms_log_residual, n_points}} from the mean steps at the
    points where every repeat reached the target (>= 2 batch sizes needed; else an 'error')."""
    from gnntrack.studies.batch_fit import fit_steps_to_target

    out = {}
    for opt, g in summary.groupby("optimizer", sort=True):
        ok = g[(g.n_reached == g.n_runs) & np.isfinite(g.steps_to_target_mean.to_numpy(float))]
        try:
            fit = fit_steps_to_target(ok.batch_size.to_numpy(float), ok.steps_to_target_mean.to_numpy(float))
            out[opt] = {**dataclasses.asdict(fit), "n_points": int(len(ok))}
        except ValueError as exc:
            out[opt] = {"error": str(exc), "n_points": int(len(ok))}
    return out


def _fmt(v, digits=3):
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def results_markdown(summary, fits: Mapping[str, dict], study: ml_collections.ConfigDict, prov: dict,
                     notes: list[str] | None = None) -> str:
    from gnntrack.studies.provenance import provenance_markdown

    lines = ["# Batch-size study", "",
             f"Target: {study.target_metric} {'>=' if study.target_mode == 'max' else '<='} {study.target_value} "
             f"(back end '{study.backend}', {n_trials(study)} tuning trials per point ({study.sampler}), repeats with seeds "
             f"{list(study.repeat_seeds)}; mean ± std over repeats that reached the target).", "",
             "| optimizer | batch (graphs) | edges/step | reached | steps | examples | epochs | wall s | best LR | warmup | B_simple (graphs) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for _, r in summary.iterrows():
        pm = lambda c: f"{_fmt(r[c + '_mean'])} ± {_fmt(r[c + '_std'], 2)}"  # noqa: E731
        lines.append(f"| {r.optimizer} | {r.batch_size} | {r.edges_per_step:.0f} | {r.n_reached}/{r.n_runs} | "
                     f"{pm('steps_to_target')} | {pm('examples_to_target')} | {pm('epochs_to_target')} | "
                     f"{pm('wall_to_target_s')} | {_fmt(r.best_lr)}{'' if r.tuning_reached else ' (no trial reached)'} | "
                     f"{_fmt(r.best_warmup)} | {_fmt(r.b_simple_graphs)} |")
    lines += ["", "## Fit S(B) = S_min (1 + B_crit / B)", "", "| optimizer | S_min (steps) | E_min (graphs) | B_crit (graphs) | rms log residual | points |",
              "|---|---|---|---|---|---|"]
    for opt, f in fits.items():
        if "error" in f:
            lines.append(f"| {opt} | – | – | – | – | {f['n_points']} ({f['error']}) |")
        else:
            lines.append(f"| {opt} | {f['s_min']:.3g} | {f['e_min']:.3g} | {f['b_crit']:.3g} | "
                         f"{f['rms_log_residual']:.3f} | {f['n_points']} |")
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    lines += ["", provenance_markdown(prov)]
    return "\n".join(lines) + "\n"


def write_batch_study_results(workdir: Path, points: list[dict], curves: list[dict],
                              study: ml_collections.ConfigDict, config: ml_collections.ConfigDict,
                              *, elapsed_s: float | None = None, load_start: list | None = None) -> dict[str, Any]:
    """Writes results.csv / .md / .json, fit.json and the plots; returns {summary, fits, files}."""
    from gnntrack.studies import scale_plots
    from gnntrack.studies.provenance import provenance, write_results_csv

    df = results_frame(points)
    summary = summarise(df)
    fits = fit_summary(summary)
    points_s = float(sum(p.get("seconds", p.get("tune_seconds", 0.0)) for p in points))
    prov = provenance(config, extra={"elapsed_s": elapsed_s, "load_average_at_start": load_start,
                                     "points_seconds": points_s})
    write_results_csv(workdir / "results.csv", df, prov)
    write_results_csv(workdir / "summary.csv", summary, prov)
    write_json_atomic(workdir / "fit.json", {"fits": fits, "provenance": prov})
    files = scale_plots.write_batch_study_plots(workdir, summary, df, fits, curves, points)
    notes = batch_study_notes(summary, fits)
    notes.append(f"Wall time of the points (tuning + repeats, summed over runs of this command that "
                 f"computed them): {points_s:.0f} s; this invocation: {elapsed_s or 0:.0f} s.")
    write_text_atomic(workdir / "results.md", results_markdown(summary, fits, study, prov, notes))
    write_json_atomic(workdir / "results.json", {
        "summary": json.loads(summary.to_json(orient="records")), "fits": fits, "curves": curves,
        "notes": notes, "plots": [str(p.name) for p in files], "provenance": prov})
    return {"summary": summary, "fits": fits, "files": files, "notes": notes}


def batch_study_notes(summary, fits: Mapping[str, dict]) -> list[str]:
    """Plain statements read off the numbers: scaling efficiency between neighbouring batch sizes
    (1 = perfect: doubling B halves the steps; 0 = no gain) and the fitted B_crit."""
    notes = []
    for opt, g in summary.groupby("optimizer", sort=True):
        g = g.sort_values("batch_size")
        b = g.batch_size.to_numpy(float)
        s = g.steps_to_target_mean.to_numpy(float)
        effs = []
        for i in range(1, len(b)):
            if np.isfinite(s[i]) and np.isfinite(s[i - 1]) and s[i] > 0:
                # efficiency of the step from B_{i-1} to B_i: log speed-up / log batch ratio
                effs.append(f"{int(b[i - 1])}->{int(b[i])}: {math.log(s[i - 1] / s[i]) / math.log(b[i] / b[i - 1]):.2f}")
        fit = fits.get(opt, {})
        crit = f"B_crit ≈ {fit['b_crit']:.3g} graphs, S_min ≈ {fit['s_min']:.3g} steps" if "b_crit" in fit else "no fit"
        notes.append(f"{opt}: scaling efficiency (log speed-up / log batch ratio) {', '.join(effs) or '–'}; {crit}.")
    return notes


def run_batch_size_study(config: ml_collections.ConfigDict, workdir: str | os.PathLike, *,
                         progress: bool = True) -> dict[str, Any]:
    """Runs (or resumes) the whole study described by `config` (run config + `study` section)."""
    from tqdm import tqdm

    t0 = time.perf_counter()
    load_start = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    base, study = split_study_config(config)
    save_config(config, workdir)
    base = apply_toy_data(base, study, workdir, progress=progress)
    if not base.data.cache_dir:
        base.data.cache_dir = str((workdir / "data").resolve())  # share one data cache across runs
    base.train.progress = False
    base.train.tensorboard = False
    pairs = [(o, int(b)) for o in study.optimizers for b in study.batch_sizes]
    points: dict[tuple[str, int], dict] = {}
    bar = tqdm(pairs, desc="batch-size study", unit="point", disable=not progress, dynamic_ncols=True)
    for optimizer, bs in bar:
        bar.set_postfix(optimizer=optimizer, batch=bs, refresh=True)
        points[(optimizer, bs)] = run_point(base, study, workdir, optimizer, bs, progress=progress)
        reached = [r for r in points[(optimizer, bs)]["repeats"] if r.get("reached")]
        if reached:
            bar.set_postfix(optimizer=optimizer, batch=bs,
                            steps=f"{np.mean([r['steps_to_target'] for r in reached]):.0f}", refresh=True)
    bar.close()
    curves = curve_runs(base, study, workdir, points)
    out = write_batch_study_results(workdir, list(points.values()), curves, study, config,
                                    elapsed_s=time.perf_counter() - t0, load_start=load_start)
    out["elapsed_s"] = time.perf_counter() - t0
    return out
