"""Training state: a pytree of (step, params, opt_state, rng) that orbax and optax handle as is."""

from __future__ import annotations

import functools
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax


@flax.struct.dataclass
class TrainState:
    """Everything a step updates (replicated over devices; for pmap stacked with a device axis).

    Attributes:
      step: int32 scalar, train steps taken (micro-steps when gradients are accumulated).
      params: model parameters (the `params` collection).
      opt_state: optax state of the transformation from `make_optimizer`.
      rng: uint32 [2] base key for stochastic layers (dropout); folded with step and device.
    """

    step: jax.Array
    params: Any
    opt_state: Any
    rng: jax.Array

    @classmethod
    def create(cls, params: Any, tx: optax.GradientTransformation, rng: jax.Array | int = 0
               ) -> "TrainState":
        """Fresh state at step 0 (rng: a legacy uint32 [2] key or an int seed)."""
        if isinstance(rng, (int, np.integer)):
            rng = jax.random.PRNGKey(int(rng))
        return cls(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params), rng=rng)


def device_slice(tree: Any, index: int = 0) -> Any:
    """Leaf[index] of every leaf (takes one device's graph out of a stacked Batch/DeviceBatch)."""
    return jax.tree_util.tree_map(lambda x: x[index], tree)


def init_train_state(model, tx: optax.GradientTransformation, example_graph, seed: int = 0
                     ) -> TrainState:
    """Initialises parameters from one (unstacked, padded or not) GraphsTuple and builds the state.

    Args:
      model: Flax Linen module called as model.apply({"params": p}, graph, train=False).
      tx: from `make_optimizer`.
      example_graph: a GraphsTuple for shapes only, e.g. `device_slice(batch.graph)`.
      seed: parameter init seed; the state's dropout rng derives from it too.
    """
    init_rng, state_rng = jax.random.split(jax.random.PRNGKey(seed))
    # jit: eager init would compile every primitive separately (seconds for a deep model)
    init = jax.jit(functools.partial(model.init, train=False))
    variables = init(init_rng, jax.tree_util.tree_map(jnp.asarray, example_graph))
    return TrainState.create(variables["params"], tx, state_rng)


def param_count(params: Any) -> int:
    """Total number of parameters."""
    return int(sum(np.size(x) for x in jax.tree_util.tree_leaves(params)))
