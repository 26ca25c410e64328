"""Per-device train and eval steps, written once with a named device axis.

    train_step = make_train_step(model, tx, loss_cfg, axis_name="devices", lr_fn=lr_fn)
    p_train = DataParallel(parallel_cfg).train_step(train_step)   # shard_map or pmap
    state, metrics = p_train(state, batch)

Inside, each device computes the sum of its weighted per-edge losses and its gradient; both are
psum'd and divided by the GLOBAL real edge count, so the update is the same for any device count
(up to float summation order). With a `task` (`gnntrack.tasks`: node or graph targets) the loss
sum and the count of real items are the task's, normalised the same way; without one the step is
the edge classifier's weighted BCE, exactly as written here. The step also measures the two squared gradient norms the
McCandlish gradient-noise-scale estimator needs (gnntrack.train.noise_scale).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import ml_collections
import optax
from jax import lax

from gnntrack._compat import varying_axes
from gnntrack.graphs.batching import DeviceBatch
from gnntrack.train.losses import loss_weights, masked_loss_sum, weighted_bce
from gnntrack.train.state import TrainState

DEFAULT_AXIS = "devices"


def tree_sq_norm(tree: Any) -> jax.Array:
    """Sum of squares of all leaves (float32 scalar)."""
    return sum(jnp.sum(jnp.square(x.astype(jnp.float32))) for x in jax.tree_util.tree_leaves(tree))


def _device_varying(tree: Any, like: jax.Array, axis_name: str) -> Any:
    """Makes `tree` vary over the device axis the way `like` (a batch array) does.

    Under shard_map, params are replicated ("invariant") and differentiating a per-device loss
    w.r.t. them would return a gradient already psum'd over devices; a varying copy (lax.pcast)
    gives each device its own gradient, which we then psum explicitly. Under pmap and
    jax.vmap(axis_name=...) nothing tracks variance and the tree is returned unchanged.
    """
    if axis_name not in varying_axes(like):
        return tree
    return jax.tree_util.tree_map(
        lambda x: x if axis_name in varying_axes(x) else lax.pcast(x, axis_name, to="varying"),
        tree)


def make_train_step(model, tx: optax.GradientTransformation, loss_cfg: ml_collections.ConfigDict | None,
                    axis_name: str = DEFAULT_AXIS, *, lr_fn: Callable[[Any], Any] | None = None,
                    task: Any = None) -> Callable[[TrainState, DeviceBatch], tuple[TrainState, dict]]:
    """Per-device train step (run it with `gnntrack.train.parallel`; it uses psum over axis_name).

    Args:
      model: Linen module: model.apply({"params": p}, graph, train=True, rngs={"dropout": k})
        -> logits [E_pad].
      tx: optax transformation (from `make_optimizer`).
      loss_cfg: a resolved loss config (`resolve_loss_config`; weighting 'manual').
      axis_name: the device axis name used by the parallel wrapper.
      lr_fn: train step -> learning rate (from `make_optimizer`), reported as metrics['lr'].
      task: a `gnntrack.tasks` task (count(batch), loss_sum(outputs, batch), optionally
        train_loss_sum(outputs, batch, step) for a loss that changes with the step); None = edges with
        `loss_cfg`'s weighted BCE. The metrics' edge counts are then the task's real items.
    Returns:
      step(state, batch) -> (new_state, metrics). `batch` is one device's DeviceBatch (no device
      axis). All metrics are identical on every device (float32 scalars):
        loss: weighted BCE summed over all real edges / global real edge count (or / the batch's
          loss_denominator when it carries one).
        lr: learning rate used by this step's update (nan if no lr_fn).
        n_edges: global real edge count. grad_norm: norm of the global gradient (before clipping).
        grad_norm_sq_global: |G_big|^2, squared norm of the global gradient.
        grad_norm_sq_local: |G_small|^2, mean over devices with edges of the squared norm of each
          device's own gradient (its loss sum / its own real edge count).
        B_small: real edges per device (global / devices with edges); B_big: global real edges.
        n_graphs: real graphs in the global batch (to express batch sizes in graphs).
    """
    if task is None:
        w_true, w_fake = loss_weights(loss_cfg)

        def item_count(batch):
            return jnp.sum(batch.edge_mask.astype(jnp.float32))

        def item_loss_sum(outputs, batch, step):
            return masked_loss_sum(outputs, batch.y, batch.edge_mask, w_true, w_fake)[0]
    else:
        item_count = task.count
        # a task whose training loss follows a schedule (distillation's decaying weight) takes
        # the step through `train_loss_sum`; the others train on their `loss_sum`
        item_loss_sum = getattr(task, "train_loss_sum", None) or (lambda outputs, batch, step:
                                                                  task.loss_sum(outputs, batch))

    def train_step(state: TrainState, batch: DeviceBatch):
        n_local = item_count(batch)
        n_global = lax.psum(n_local, axis_name)
        active = (n_local > 0).astype(jnp.float32)
        n_active = lax.psum(active, axis_name)
        key = jax.random.fold_in(jax.random.fold_in(state.rng, state.step),
                                 lax.axis_index(axis_name))

        def local_loss_sum(params):
            outputs = model.apply({"params": params}, batch.graph, train=True, rngs={"dropout": key})
            return item_loss_sum(outputs, batch, state.step)

        # Differentiate w.r.t. a device-VARYING copy of the params: under shard_map the gradient
        # of replicated (invariant) params would otherwise come back already psum'd; this way
        # both shard_map and pmap give each device its own gradient and we psum explicitly.
        local_params = _device_varying(state.params, batch.y, axis_name)
        loss_sum, grad_sum = jax.value_and_grad(local_loss_sum)(local_params)
        # normally this step's own item count; with batching.loss_normaliser='update' the host
        # gives the update's count per step, so MultiSteps' mean is the update's exact mean (the
        # same on every device; pmax makes it device-invariant, as the psum'd count is)
        denom = (jnp.maximum(n_global, 1.0) if batch.loss_denominator is None
                 else jnp.maximum(lax.pmax(batch.loss_denominator, axis_name), 1e-12))
        grads = jax.tree_util.tree_map(lambda g: lax.psum(g, axis_name) / denom, grad_sum)
        loss = lax.psum(loss_sum, axis_name) / denom
        sq_global = tree_sq_norm(grads)
        sq_local_own = tree_sq_norm(grad_sum) / jnp.square(jnp.maximum(n_local, 1.0))
        sq_local = lax.psum(sq_local_own * active, axis_name) / jnp.maximum(n_active, 1.0)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        lr = jnp.float32(jnp.nan) if lr_fn is None else jnp.asarray(lr_fn(state.step), jnp.float32)
        metrics = {
            "loss": loss, "lr": lr, "n_edges": n_global, "grad_norm": jnp.sqrt(sq_global),
            "grad_norm_sq_global": sq_global, "grad_norm_sq_local": sq_local,
            "B_small": n_global / jnp.maximum(n_active, 1.0), "B_big": n_global,
            "n_graphs": lax.psum(jnp.sum(batch.graph_mask.astype(jnp.float32)), axis_name),
        }
        new_state = state.replace(step=state.step + 1, params=params, opt_state=opt_state)
        return new_state, metrics

    return train_step


def make_eval_step(model, loss_cfg: ml_collections.ConfigDict | None = None, *, task: Any = None
                   ) -> Callable[[TrainState, DeviceBatch], dict]:
    """Per-device eval step: step(state, batch) -> dict of per-device outputs.

    Outputs (no collectives, so it needs no axis name):
      scores: float32 [E_pad], sigmoid(logits) on real edges, 0 on padding.
      edge_mask: bool [E_pad] (copied through, so outputs are self-describing).
      loss_sum: float32 scalar, weighted BCE summed over the device's real edges (only when
        loss_cfg is given; divide the total over batches by the total real edges).
    Map scores back to graphs with `gnntrack.graphs.batching.split_edge_values`.
    With a `task`: the task's predictions (`task.predict`, per node or graph, zero on padding)
    and loss_sum, the task's summed loss over the device's real items.
    """
    if task is not None:
        def task_eval_step(state: TrainState, batch: DeviceBatch) -> dict:
            outputs = model.apply({"params": state.params}, batch.graph, train=False)
            return {**task.predict(outputs, batch), "loss_sum": task.loss_sum(outputs, batch)}

        return task_eval_step
    weights = None if loss_cfg is None else loss_weights(loss_cfg)

    def eval_step(state: TrainState, batch: DeviceBatch) -> dict:
        logits = model.apply({"params": state.params}, batch.graph, train=False)
        out = {"scores": jnp.where(batch.edge_mask, jax.nn.sigmoid(logits), 0.0).astype(jnp.float32),
               "edge_mask": batch.edge_mask}
        if weights is not None:
            out["loss_sum"] = jnp.sum(weighted_bce(logits, batch.y, batch.edge_mask, *weights))
        return out

    return eval_step
