"""Weighted, masked BCE and loss-config resolution."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gnntrack.errors import ConfigError, InputError
from gnntrack.train import losses


def _np_bce(logits, y, w_true, w_fake):
    p = 1 / (1 + np.exp(-logits))
    w = np.where(y > 0.5, w_true, w_fake)
    return -w * (y * np.log(p) + (1 - y) * np.log(1 - p))


def test_weighted_bce_matches_numpy_and_masks_padding():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=10).astype(np.float32)
    y = (rng.random(10) < 0.4).astype(np.float32)
    mask = np.arange(10) < 7
    got = np.asarray(losses.weighted_bce(logits, y, mask, 3.0, 0.5))
    np.testing.assert_allclose(got[:7], _np_bce(logits, y, 3.0, 0.5)[:7], rtol=1e-5)
    assert np.all(got[7:] == 0)
    total, count = losses.masked_loss_sum(logits, y, mask, 3.0, 0.5)
    np.testing.assert_allclose(float(total), got.sum(), rtol=1e-6)
    assert float(count) == 7


def test_padding_garbage_never_reaches_loss_or_gradient():
    logits = jnp.array([0.3, -1.2, jnp.nan, jnp.inf, -jnp.inf])
    y = jnp.array([1.0, 0.0, 1.0, 0.0, 1.0])
    mask = jnp.array([True, True, False, False, False])
    value, grad = jax.value_and_grad(lambda z: losses.masked_loss_sum(z, y, mask)[0])(logits)
    ref = losses.masked_loss_sum(logits[:2], y[:2], mask[:2])[0]
    assert np.isfinite(float(value)) and float(value) == pytest.approx(float(ref))
    assert np.all(np.asarray(grad[2:]) == 0) and np.all(np.isfinite(np.asarray(grad)))


def test_auto_weights_balance_classes():
    labels = [np.array([1, 0, 0, 0], np.float32), np.array([0, 0, 1, 0, 0, 0], np.float32)]
    cfg = losses.default_loss_config()
    cfg.weighting = "auto"
    resolved = losses.resolve_loss_config(cfg, labels)
    w_true, w_fake = losses.loss_weights(resolved)
    assert resolved.weighting == "manual"
    assert w_true * 2 == pytest.approx(w_fake * 8)          # equal total weight per class
    assert (2 * w_true + 8 * w_fake) / 10 == pytest.approx(1.0)  # mean weight 1
    assert cfg.weighting == "auto"  # input config untouched
    manual = losses.resolve_loss_config(losses.default_loss_config(), labels)
    assert losses.loss_weights(manual) == (1.0, 1.0)


def test_loss_config_errors():
    cfg = losses.default_loss_config()
    cfg.weighting = "auto"
    with pytest.raises(ConfigError, match="resolve_loss_config"):
        losses.loss_weights(cfg)
    with pytest.raises(InputError, match="true and fake"):
        losses.resolve_loss_config(cfg, [np.ones(5, np.float32)])
    bad = losses.default_loss_config()
    bad.name = "focal"
    with pytest.raises(ConfigError, match="loss.name"):
        losses.loss_weights(bad)
