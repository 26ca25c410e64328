"""Runtime learning-rate schedule for the fast study trainer: the peak LR, the warmup steps and
the warmup's initial factor live in the optimizer STATE, so every tuning trial of a point reuses
one compiled train step (a new LR is a new state value, not a new program).

    tx = optax.chain(make_optimizer(unit_optimizer_config(opt), B)[0], scale_by_runtime_schedule())
    state = set_runtime_schedule(tx.init(params), *runtime_schedule_values(opt, B))
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import optax

from gnntrack.errors import ConfigError
from gnntrack.train.optim import scaled_learning_rate


class RuntimeScheduleState(NamedTuple):
    """count: updates done; lr: peak learning rate; warmup: warmup steps; init_factor: the
    warmup starts at init_factor * lr (all scalars, so new values need no recompilation)."""

    count: Any
    lr: Any
    warmup: Any
    init_factor: Any


def schedule_factor(count, warmup, init_factor):
    """Linear warmup factor (optax.linear_schedule semantics), 1 after `warmup` updates."""
    frac = jnp.minimum(count.astype(jnp.float32) / jnp.maximum(warmup, 1.0), 1.0)
    return jnp.where(warmup > 0, init_factor + (1.0 - init_factor) * frac, 1.0)


def scale_by_runtime_schedule():
    """optax transformation: updates *= lr * warmup_factor(count), with lr/warmup in the state."""
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
    last = opt_state[-1]
    if not isinstance(last, RuntimeScheduleState):
        raise TypeError("optimizer state does not end with a RuntimeScheduleState")
    new = RuntimeScheduleState(count=jnp.zeros([], jnp.int32), lr=jnp.asarray(lr, jnp.float32),
                               warmup=jnp.asarray(float(warmup), jnp.float32),
                               init_factor=jnp.asarray(init_factor, jnp.float32))
    return (*opt_state[:-1], new)
