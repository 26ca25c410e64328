"""Optimizers, schedules, LR scaling rules, clipping and accumulation from the optimizer config."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gnntrack.errors import ConfigError
from gnntrack.train import optim


def _cfg(**kw):
    cfg = optim.default_optimizer_config()
    for k, v in kw.items():
        cfg[k] = v
    return cfg


def _toy_problem():
    """Logistic regression on separable 2-D data; params have a kernel and a bias."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 2)).astype(np.float32)
    y = (x @ np.array([2.0, -1.0]) + 0.5 > 0).astype(np.float32)
    params = {"dense": {"kernel": jnp.zeros((2, 1)), "bias": jnp.zeros((1,))}}

    def loss(p):
        logits = (x @ p["dense"]["kernel"])[:, 0] + p["dense"]["bias"][0]
        return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, y))
    return params, loss


def _train(cfg, steps=60, batch=1):
    params, loss = _toy_problem()
    tx, lr_fn = optim.make_optimizer(cfg, batch, total_steps=steps)
    opt_state = tx.init(params)

    def body(carry, _):
        p, s = carry
        g = jax.grad(loss)(p)
        u, s = tx.update(g, s, p)
        return (optax.apply_updates(p, u), s), None
    (params_out, _), _ = jax.lax.scan(body, (params, opt_state), None, length=steps)
    return float(loss(params)), float(loss(params_out)), params_out, lr_fn


@pytest.mark.parametrize("name,lr", [("adam", 0.05), ("adamw", 0.05), ("sgd", 0.5), ("lamb", 0.05),
                                     ("lars", 2.0)])
def test_each_optimizer_trains_toy_problem(name, lr):
    before, after, _, _ = _train(_cfg(name=name, lr=lr, weight_decay=1e-4))
    assert after < 0.6 * before, (name, before, after)


@pytest.mark.parametrize("schedule", optim.SCHEDULES)
def test_each_schedule_trains_toy_problem(schedule):
    cfg = _cfg(lr=0.05, schedule=schedule, warmup_steps=5, decay_steps=30, boundaries=(30,),
               scales=(0.5,))
    before, after, _, _ = _train(cfg)
    assert after < 0.6 * before


def test_sgd_nesterov_builds_and_trains():
    before, after, _, _ = _train(_cfg(name="sgd", lr=0.5, nesterov=True))
    assert after < 0.6 * before


def test_schedule_values():
    cfg = _cfg(lr=1.0, schedule="warmup_cosine", warmup_steps=10, total_steps=110, end_lr_factor=0.1)
    s = optim.make_schedule(cfg, 1.0)
    assert float(s(0)) == pytest.approx(0.0) and float(s(10)) == pytest.approx(1.0)
    assert float(s(110)) == pytest.approx(0.1) and float(s(60)) == pytest.approx(0.55, rel=1e-4)
    s = optim.make_schedule(_cfg(schedule="exponential", decay_steps=100, decay_rate=0.5), 2.0)
    assert float(s(100)) == pytest.approx(1.0) and float(s(200)) == pytest.approx(0.5)
    s = optim.make_schedule(_cfg(schedule="warmup_exponential", warmup_steps=4, decay_steps=10,
                                 decay_rate=0.1), 1.0)
    assert float(s(2)) == pytest.approx(0.5) and float(s(4)) == pytest.approx(1.0)
    assert float(s(14)) == pytest.approx(0.1)
    s = optim.make_schedule(_cfg(schedule="piecewise", boundaries=(10, 20), scales=(0.5, 0.1)), 1.0)
    assert [float(s(t)) for t in (0, 15, 25)] == pytest.approx([1.0, 0.5, 0.05])


def test_lr_scaling_rules():
    assert optim.scaled_learning_rate(_cfg(lr=0.1, scaling_rule="none", reference_batch_size=4), 16) == pytest.approx(0.1)
    assert optim.scaled_learning_rate(_cfg(lr=0.1, scaling_rule="linear", reference_batch_size=4), 16) == pytest.approx(0.4)
    assert optim.scaled_learning_rate(_cfg(lr=0.1, scaling_rule="sqrt", reference_batch_size=4), 16) == pytest.approx(0.2)
    # accumulation enlarges the effective batch
    cfg = _cfg(lr=0.1, scaling_rule="linear", reference_batch_size=4, accumulation_steps=2)
    assert optim.scaled_learning_rate(cfg, 16) == pytest.approx(0.8)
    _, lr_fn = optim.make_optimizer(cfg, 16)
    assert float(lr_fn(0)) == pytest.approx(0.8)


def test_lr_fn_counts_optimizer_updates_with_accumulation():
    cfg = _cfg(lr=1.0, schedule="piecewise", boundaries=(2,), scales=(0.1,), accumulation_steps=3)
    _, lr_fn = optim.make_optimizer(cfg, 1)
    assert [float(lr_fn(t)) for t in (0, 5, 6, 8)] == pytest.approx([1.0, 1.0, 0.1, 0.1])


def test_global_norm_clipping():
    params = {"w": jnp.zeros(4), "b": jnp.zeros(())}
    grads = {"w": jnp.array([3.0, 0.0, 0.0, 4.0]), "b": jnp.array(0.0)}  # norm 5
    tx, _ = optim.make_optimizer(_cfg(name="sgd", lr=1.0, momentum=0.0, clip_grad_norm=1.0), 1)
    updates, _ = tx.update(grads, tx.init(params), params)
    assert float(optax.tree.norm(updates)) == pytest.approx(1.0)
    np.testing.assert_allclose(updates["w"], [-0.6, 0, 0, -0.8], rtol=1e-6)
    tx, _ = optim.make_optimizer(_cfg(name="sgd", lr=1.0, momentum=0.0, clip_grad_norm=10.0), 1)
    updates, _ = tx.update(grads, tx.init(params), params)
    assert float(optax.tree.norm(updates)) == pytest.approx(5.0)


def test_accumulation_equals_bigger_batch_for_sgd():
    params = {"w": jnp.ones(3)}
    g1, g2 = {"w": jnp.array([1.0, 2.0, 3.0])}, {"w": jnp.array([-1.0, 0.5, 1.0])}
    tx, _ = optim.make_optimizer(_cfg(name="sgd", lr=0.1, momentum=0.9, accumulation_steps=2), 1)
    s = tx.init(params)
    u1, s = tx.update(g1, s, params)
    assert np.all(np.asarray(u1["w"]) == 0)  # no update on the first micro-step
    p = optax.apply_updates(params, u1)
    u2, s = tx.update(g2, s, p)
    p = optax.apply_updates(p, u2)
    big, _ = optim.make_optimizer(_cfg(name="sgd", lr=0.1, momentum=0.9), 1)
    mean = {"w": (g1["w"] + g2["w"]) / 2}
    ub, _ = big.update(mean, big.init(params), params)
    np.testing.assert_allclose(p["w"], optax.apply_updates(params, ub)["w"], rtol=1e-6)


def test_weight_decay_masks_bias_and_norm_params():
    params = {"dense": {"kernel": jnp.ones((2, 2)), "bias": jnp.ones(2)}, "norm": {"scale": jnp.ones(2)}}
    zero = jax.tree_util.tree_map(jnp.zeros_like, params)
    mask = optim.decay_mask(params)
    assert mask == {"dense": {"kernel": True, "bias": False}, "norm": {"scale": False}}
    for name in ("adamw", "lamb", "sgd", "adam"):
        tx, _ = optim.make_optimizer(_cfg(name=name, lr=0.1, weight_decay=0.5, momentum=0.0), 1)
        u, _ = tx.update(zero, tx.init(params), params)
        assert float(jnp.abs(u["dense"]["kernel"]).sum()) > 0, name
        assert float(jnp.abs(u["dense"]["bias"]).sum()) == 0, name
        assert float(jnp.abs(u["norm"]["scale"]).sum()) == 0, name
    # LARS: bias gets neither decay nor trust-ratio scaling (plain momentum SGD on its gradient)
    tx, _ = optim.make_optimizer(_cfg(name="lars", lr=0.1, weight_decay=0.5, momentum=0.0), 1)
    g = jax.tree_util.tree_map(jnp.ones_like, params)
    u, _ = tx.update(g, tx.init(params), params)
    np.testing.assert_allclose(u["dense"]["bias"], -0.1 * np.ones(2), rtol=1e-6)


def test_config_errors():
    with pytest.raises(ConfigError, match="optimizer.name"):
        optim.make_optimizer(_cfg(name="adagrad"), 1)
    with pytest.raises(ConfigError, match="optimizer.schedule"):
        optim.make_optimizer(_cfg(schedule="cyclic"), 1)
    with pytest.raises(ConfigError, match="total_steps"):
        optim.make_optimizer(_cfg(schedule="warmup_cosine", warmup_steps=10), 1)
    with pytest.raises(ConfigError, match="scaling_rule"):
        optim.make_optimizer(_cfg(scaling_rule="cubic"), 1)
    with pytest.raises(ConfigError, match="boundaries"):
        optim.make_optimizer(_cfg(schedule="piecewise", boundaries=(1, 2), scales=(0.5,)), 1)
    # warmup_cosine takes the run length when total_steps is 0
    _, lr_fn = optim.make_optimizer(_cfg(schedule="warmup_cosine", warmup_steps=10), 1, total_steps=100)
    assert float(lr_fn(100)) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("key, value", [
    ("lr", 0.0), ("lr", -1e-3), ("lr", float("nan")), ("lr", float("inf")),
    ("weight_decay", -1e-4), ("momentum", 1.0), ("momentum", -0.1), ("b1", 1.0), ("b2", -0.5),
    ("eps", -1e-8), ("trust_coefficient", 0.0), ("decay_rate", 0.0), ("decay_steps", 0),
    ("warmup_steps", -1), ("warmup_init_factor", -0.5), ("end_lr_factor", float("nan")),
    ("total_steps", -5), ("clip_grad_norm", -1.0), ("clip_grad_norm", float("inf")),
    ("reference_batch_size", 0), ("accumulation_steps", 0),
])
def test_impossible_setting_is_a_config_error_naming_key_and_value(key, value):
    # a negative or zero learning rate used to train silently (gradient ascent, or nothing)
    with pytest.raises(ConfigError, match=rf"'optimizer\.{key}'.*got {value!r}".replace("(", r"\(")):
        optim.validate_optimizer_config(_cfg(**{key: value}))
    with pytest.raises(ConfigError, match=rf"optimizer\.{key}"):
        optim.make_optimizer(_cfg(**{key: value}), 1, total_steps=100)


def test_piecewise_scales_must_be_positive():
    with pytest.raises(ConfigError, match=r"'optimizer\.scales'.*-0\.5"):
        optim.validate_optimizer_config(_cfg(schedule="piecewise", boundaries=(10,), scales=(-0.5,)))
    with pytest.raises(ConfigError, match=r"'optimizer\.boundaries'.*-10"):
        optim.validate_optimizer_config(_cfg(schedule="piecewise", boundaries=(-10,), scales=(0.5,)))
    optim.validate_optimizer_config(_cfg(schedule="piecewise", boundaries=(10, 20), scales=(0.5, 0.1)))
    optim.validate_optimizer_config(_cfg())  # the defaults are valid
