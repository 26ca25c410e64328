"""Optimizers, learning-rate schedules and LR scaling rules, all from the `optimizer` config.

    tx, lr_fn = make_optimizer(config.optimizer, global_batch_size=config.batching.graphs_per_step,
                               total_steps=config.train.steps)
    lr_fn(state.step)   # learning rate used by the update at that train step

Weight decay (adamw, lamb, lars, and the coupled L2 of adam/sgd) and LARS's trust ratio skip
biases and normalisation parameters: every parameter with ndim <= 1 (`decay_mask`).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import optax

from gnntrack.errors import ConfigError

OPTIMIZERS = ("adam", "adamw", "sgd", "lamb", "lars")
SCHEDULES = ("constant", "exponential", "warmup_exponential", "warmup_cosine", "piecewise")
SCALING_RULES = ("none", "linear", "sqrt")


def default_optimizer_config() -> ml_collections.ConfigDict:
    """Optimizer defaults (the `optimizer` sub-config).

    Keys:
      name: adam | adamw | sgd | lamb | lars.
      lr: base learning rate at `reference_batch_size` (before the scaling rule).
      b1, b2, eps: Adam-family moments. momentum, nesterov: sgd and lars.
      weight_decay: decoupled for adamw/lamb/lars; coupled L2 for adam/sgd (added to the
        gradient); never applied to biases / norm scales.
      trust_coefficient: LARS.
      schedule: constant | exponential | warmup_exponential | warmup_cosine | piecewise.
      warmup_steps: linear warmup from warmup_init_factor*lr to lr (warmup_* schedules).
      decay_steps, decay_rate, staircase: exponential decay lr * decay_rate^(t / decay_steps),
        t counted after warmup.
      total_steps: warmup_cosine: total optimizer updates incl. warmup (0 = take `total_steps`
        passed to make_optimizer, i.e. the run length).
      end_lr_factor: warmup_cosine final lr = lr * end_lr_factor.
      boundaries, scales: piecewise: at update boundaries[i] the lr is multiplied by scales[i]
        (cumulative, optax convention).
      scaling_rule: none | linear | sqrt: lr *= (B / reference_batch_size)^{0, 1, 1/2}, with B
        the effective batch (global batch x accumulation_steps) in the same unit (graphs).
      reference_batch_size: batch size at which `lr` was tuned.
      clip_grad_norm: global-norm clipping threshold (0 = off); applied to the (accumulated)
        global gradient.
      accumulation_steps: apply an update every k train steps with the mean of k gradients
        (optax.MultiSteps); schedules count optimizer updates.
    """
    c = ml_collections.ConfigDict()
    c.name = "adam"
    c.lr = 1e-3
    c.b1 = 0.9
    c.b2 = 0.999
    c.eps = 1e-8
    c.momentum = 0.9
    c.nesterov = False
    c.weight_decay = 0.0
    c.trust_coefficient = 0.001
    c.schedule = "constant"
    c.warmup_steps = 0
    c.warmup_init_factor = 0.0
    c.decay_steps = 1000
    c.decay_rate = 0.5
    c.staircase = False
    c.total_steps = 0
    c.end_lr_factor = 0.0
    c.boundaries = ()
    c.scales = ()
    c.scaling_rule = "none"
    c.reference_batch_size = 1
    c.clip_grad_norm = 0.0
    c.accumulation_steps = 1
    return c


# Each key's allowed values: (low, high, low included, high included); None = unbounded. A
# setting outside them cannot train as meant: lr <= 0 ascends the loss or stands still, a
# momentum or Adam decay >= 1 never forgets, a negative weight decay grows the weights.
_RANGES = {
    "lr": (0.0, None, False, False),
    "b1": (0.0, 1.0, True, False), "b2": (0.0, 1.0, True, False), "momentum": (0.0, 1.0, True, False),
    "eps": (0.0, None, True, False), "weight_decay": (0.0, None, True, False),
    "trust_coefficient": (0.0, None, False, False),
    "warmup_steps": (0, None, True, False), "warmup_init_factor": (0.0, None, True, False),
    "decay_steps": (0, None, False, False), "decay_rate": (0.0, None, False, False),
    "total_steps": (0, None, True, False), "end_lr_factor": (0.0, None, True, False),
    "reference_batch_size": (0, None, False, False), "clip_grad_norm": (0.0, None, True, False),
    "accumulation_steps": (1, None, True, False),
}


def _range_text(low, high, low_in: bool, high_in: bool) -> str:
    if high is None:
        return f"{'>=' if low_in else '>'} {low}"
    return f"in {'[' if low_in else '('}{low}, {high}{']' if high_in else ')'}"


def _in_range(value, low, high, low_in: bool, high_in: bool) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return False
    above = value >= low if low_in else value > low
    below = high is None or (value <= high if high_in else value < high)
    return above and below


def validate_optimizer_config(config: ml_collections.ConfigDict) -> None:
    """Raises ConfigError naming the key and its value for a setting no run can use as meant:
    unknown names, a non-finite number, or a value outside its key's range (`_RANGES`)."""
    for key, allowed in (("name", OPTIMIZERS), ("schedule", SCHEDULES), ("scaling_rule", SCALING_RULES)):
        if config[key] not in allowed:
            raise ConfigError(f"config key 'optimizer.{key}' must be one of {', '.join(allowed)}, "
                              f"got {config[key]!r}")
    for key, bounds in _RANGES.items():
        if not _in_range(config[key], *bounds):
            raise ConfigError(f"config key 'optimizer.{key}' must be a finite number "
                              f"{_range_text(*bounds)}, got {config[key]!r}")
    if len(config.boundaries) != len(config.scales):
        raise ConfigError("config keys 'optimizer.boundaries' and 'optimizer.scales' must have the same "
                          f"length, got {len(config.boundaries)} and {len(config.scales)}")
    for b in config.boundaries:
        if not _in_range(b, 0, None, True, False):
            raise ConfigError(f"config key 'optimizer.boundaries' must hold update counts >= 0, got {b!r}")
    for scale in config.scales:
        if not _in_range(scale, 0.0, None, False, False):
            raise ConfigError(f"config key 'optimizer.scales' must hold finite factors > 0, got {scale!r}")


def scaled_learning_rate(config: ml_collections.ConfigDict, global_batch_size: float) -> float:
    """config.lr scaled by the rule for an effective batch of
    global_batch_size * accumulation_steps against reference_batch_size."""
    validate_optimizer_config(config)
    rule = config.scaling_rule
    if global_batch_size <= 0:
        raise ConfigError(f"the global batch size must be > 0, got {global_batch_size}")
    ratio = global_batch_size * max(1, int(config.accumulation_steps)) / config.reference_batch_size
    return float(config.lr * {"none": 1.0, "linear": ratio, "sqrt": ratio ** 0.5}[rule])


def make_schedule(config: ml_collections.ConfigDict, peak_lr: float,
                  total_steps: int | None = None) -> optax.Schedule:
    """The learning rate as a function of the optimizer-update count.

    Args:
      config: optimizer config (schedule keys). peak_lr: lr after scaling.
      total_steps: run length in optimizer updates, used by warmup_cosine when
        config.total_steps is 0.
    """
    validate_optimizer_config(config)
    name = config.schedule
    warmup = int(config.warmup_steps)
    exp = dict(transition_steps=int(config.decay_steps), decay_rate=float(config.decay_rate),
               staircase=bool(config.staircase))
    if name == "constant":
        return optax.constant_schedule(peak_lr)
    if name == "exponential":
        return optax.exponential_decay(peak_lr, **exp)
    if name == "warmup_exponential":
        if warmup == 0:
            return optax.exponential_decay(peak_lr, **exp)
        return optax.join_schedules(
            [optax.linear_schedule(peak_lr * config.warmup_init_factor, peak_lr, warmup),
             optax.exponential_decay(peak_lr, **exp)], [warmup])
    if name == "warmup_cosine":
        total = int(config.total_steps) or int(total_steps or 0)
        if total <= warmup:
            raise ConfigError("optimizer.schedule='warmup_cosine' needs optimizer.total_steps (or the "
                              f"run length) > warmup_steps={warmup}, got {total}")
        return optax.warmup_cosine_decay_schedule(
            init_value=peak_lr * config.warmup_init_factor, peak_value=peak_lr, warmup_steps=warmup,
            decay_steps=total, end_value=peak_lr * config.end_lr_factor)
    if name == "piecewise":
        return optax.piecewise_constant_schedule(
            peak_lr, {int(b): float(s) for b, s in zip(config.boundaries, config.scales)})
    raise AssertionError(f"unhandled schedule {name!r}")  # validate_optimizer_config knows SCHEDULES


def decay_mask(params: Any) -> Any:
    """True for parameters that get weight decay / trust ratio: everything with ndim > 1
    (kernels); biases and LayerNorm scales/offsets (ndim <= 1) are excluded."""
    return jax.tree_util.tree_map(lambda p: jnp.ndim(p) > 1, params)


def make_optimizer(config: ml_collections.ConfigDict, global_batch_size: float, *,
                   total_steps: int | None = None
                   ) -> tuple[optax.GradientTransformation, Callable[[Any], jax.Array]]:
    """Builds the optax transformation and the learning-rate function.

    Args:
      config: optimizer config (see `default_optimizer_config`).
      global_batch_size: graphs per train step over all devices (for the scaling rule).
      total_steps: run length in TRAIN steps (used by warmup_cosine when
        config.total_steps is 0; divided by accumulation_steps).
    Returns:
      (tx, lr_fn): tx = clip -> optimizer, wrapped in MultiSteps when accumulating;
      lr_fn(train_step) -> lr used by the update of that train step (jit-friendly).
    """
    validate_optimizer_config(config)
    name = config.name
    accum = int(config.accumulation_steps)
    peak = scaled_learning_rate(config, global_batch_size)
    schedule = make_schedule(config, peak, None if total_steps is None else total_steps // accum)
    wd = float(config.weight_decay)
    if name == "adam":
        opt = optax.adam(schedule, b1=config.b1, b2=config.b2, eps=config.eps)
    elif name == "adamw":
        opt = optax.adamw(schedule, b1=config.b1, b2=config.b2, eps=config.eps, weight_decay=wd,
                          mask=decay_mask)
    elif name == "sgd":
        opt = optax.sgd(schedule, momentum=config.momentum or None, nesterov=bool(config.nesterov))
    elif name == "lamb":
        opt = optax.lamb(schedule, b1=config.b1, b2=config.b2, eps=config.eps, weight_decay=wd,
                         mask=decay_mask)
    else:  # lars
        opt = optax.lars(schedule, weight_decay=wd, weight_decay_mask=decay_mask,
                         trust_coefficient=config.trust_coefficient, trust_ratio_mask=decay_mask,
                         momentum=config.momentum, nesterov=bool(config.nesterov))
    parts = []
    if config.clip_grad_norm > 0:
        parts.append(optax.clip_by_global_norm(float(config.clip_grad_norm)))
    if wd > 0 and name in ("adam", "sgd"):  # coupled L2, as torch's weight_decay
        parts.append(optax.add_decayed_weights(wd, mask=decay_mask))
    tx = optax.chain(*parts, opt)
    if accum > 1:
        tx = optax.MultiSteps(tx, every_k_schedule=accum).gradient_transformation()

    def lr_fn(train_step):
        return schedule(jnp.asarray(train_step) // accum)

    return tx, lr_fn
