"""Masked, weighted binary cross-entropy on edge logits.

The train step normalises by the GLOBAL real edge count (psum over devices), so the loss and
gradients are the same for any number of devices; the helpers here return sums and counts.
"""

from __future__ import annotations

from typing import Iterable

import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from gnntrack.errors import ConfigError, InputError

WEIGHTINGS = ("manual", "auto")


def default_loss_config() -> ml_collections.ConfigDict:
    """Loss defaults (the `loss` sub-config).

    Keys:
      name: 'weighted_bce' (the only one so far).
      weighting: 'manual' (use weight_true / weight_fake) or 'auto' (balance true and fake edges
        from the training data's fake:true ratio; resolve with `resolve_loss_config`).
      weight_true, weight_fake: per-edge weights of true (y=1) and fake (y=0) edges.
    """
    c = ml_collections.ConfigDict()
    c.name = "weighted_bce"
    c.weighting = "manual"
    c.weight_true = 1.0
    c.weight_fake = 1.0
    return c


def balanced_weights(n_true: int, n_fake: int) -> tuple[float, float]:
    """(w_true, w_fake) so both classes carry equal total weight and the mean weight is 1:
    w_true = N / (2 n_true), w_fake = N / (2 n_fake)."""
    if n_true <= 0 or n_fake <= 0:
        raise InputError(f"automatic loss weights need both true and fake edges, got "
                         f"{n_true} true / {n_fake} fake")
    total = n_true + n_fake
    return total / (2.0 * n_true), total / (2.0 * n_fake)


def resolve_loss_config(config: ml_collections.ConfigDict, labels: Iterable[np.ndarray]
                        ) -> ml_collections.ConfigDict:
    """A copy of the loss config with concrete weights (weighting='manual').

    Args:
      config: loss config; with weighting='auto' the weights come from `labels`.
      labels: per-graph edge label arrays (e.g. `g.y for g in train_graphs`), used for 'auto' only.
    Returns:
      ConfigDict with weighting='manual' and weight_true / weight_fake set (store it in the run's
      resolved config so the weights are on record).
    """
    _check(config)
    out = ml_collections.ConfigDict(config.to_dict())
    if config.weighting == "auto":
        n_true = n_fake = 0
        for y in labels:
            y = np.asarray(y)
            pos = int(np.count_nonzero(y > 0.5))
            n_true += pos
            n_fake += y.size - pos
        out.weight_true, out.weight_fake = balanced_weights(n_true, n_fake)
        out.weighting = "manual"
    return out


def loss_weights(config: ml_collections.ConfigDict) -> tuple[float, float]:
    """(weight_true, weight_fake) of a resolved loss config; ConfigError if still 'auto'."""
    _check(config)
    if config.weighting == "auto":
        raise ConfigError("loss.weighting='auto' must be resolved from the training data first "
                          "(gnntrack.train.losses.resolve_loss_config)")
    return float(config.weight_true), float(config.weight_fake)


def _check(config) -> None:
    if config.name != "weighted_bce":
        raise ConfigError(f"loss.name must be 'weighted_bce', got {config.name!r}")
    if config.weighting not in WEIGHTINGS:
        raise ConfigError(f"loss.weighting must be one of {WEIGHTINGS}, got {config.weighting!r}")
    if config.weight_true < 0 or config.weight_fake < 0:
        raise ConfigError("loss.weight_true and loss.weight_fake must be >= 0")


def weighted_bce(logits: jnp.ndarray, labels: jnp.ndarray, mask: jnp.ndarray,
                 weight_true: float = 1.0, weight_fake: float = 1.0) -> jnp.ndarray:
    """Per-edge weighted BCE on logits, 0 on masked (padding) edges.

    Args:
      logits: float [E]; labels: float [E] in {0, 1}; mask: bool [E] True for real edges.
    Returns:
      float32 [E]. Padding logits are replaced by 0 before the loss so that whatever the model
      produced there (even inf/nan) cannot reach the value or the gradient.
    """
    # float32 whatever the model's compute dtype (bf16 BCE sums lose too much precision)
    logits = jnp.where(mask, logits.astype(jnp.float32), 0.0)
    labels = labels.astype(jnp.float32)
    per_edge = optax.sigmoid_binary_cross_entropy(logits, labels)
    weights = jnp.where(labels > 0.5, weight_true, weight_fake)
    return jnp.where(mask, weights * per_edge, 0.0)


def masked_loss_sum(logits, labels, mask, weight_true=1.0, weight_fake=1.0
                    ) -> tuple[jnp.ndarray, jnp.ndarray]:
    """(sum of weighted BCE over real edges, number of real edges) for one device."""
    loss = weighted_bce(logits, labels, mask, weight_true, weight_fake)
    return jnp.sum(loss), jnp.sum(mask.astype(jnp.float32))
