"""Task 'jet': weighted BCE, distillation with a decaying weight, and the tagging metrics."""

import types

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from gnntrack import tasks
from gnntrack.errors import ConfigError
from gnntrack.graphs import batching as B
from gnntrack.jets.graphs import jet_graphs
from gnntrack.nn import build_model, default_model_config
from gnntrack.tasks.jets import background_rejection, distillation_kl, jet_metrics
from gnntrack.train import optim, state as S, step as T
from tests.jets.conftest import synthetic_jets


def bce(logit, label):
    """Binary cross-entropy of one logit, in numpy: log(1 + e^s) - y s."""
    return float(np.logaddexp(0.0, logit) - label * logit)


def task(**keys):
    config = tasks.default_task_config("jet")
    config.update(keys)
    return tasks.make_task(config)


def batch(label, weight, teacher=None, mask=None):
    columns = [label, weight] + ([] if teacher is None else [teacher])
    return types.SimpleNamespace(graph_y=jnp.asarray(np.stack(columns, 1), jnp.float32),
                                 graph_mask=jnp.asarray(np.ones(len(label), bool) if mask is None else mask))


def test_the_loss_is_the_training_weight_times_bce_over_real_jets_only():
    logits = np.array([[2.0], [-1.0], [0.5], [9.0]], np.float32)
    b = batch(np.array([1, 0, 0, 1.0]), np.array([0.5, 2.0, 1.0, 3.0]), mask=np.array([1, 1, 1, 0], bool))
    want = sum(w * bce(s, y)
               for s, y, w in ((2.0, 1.0, 0.5), (-1.0, 0.0, 2.0), (0.5, 0.0, 1.0)))
    jet = task()
    np.testing.assert_allclose(float(jet.loss_sum(jnp.asarray(logits), b)), want, rtol=1e-6)
    np.testing.assert_allclose(float(jet.train_loss_sum(jnp.asarray(logits), b, 7)), want, rtol=1e-6)
    assert float(jet.count(b)) == 3.0


def test_distillation_is_the_two_class_softmax_kl_with_t_squared_and_a_decaying_lambda():
    s, t, temperature = np.array([1.5, -0.3]), np.array([-0.5, 2.0]), 2.0

    def softmax(z):
        e = np.exp(np.stack([np.zeros_like(z), z], 1) / temperature)
        return e / e.sum(1, keepdims=True)

    p, q = softmax(t), softmax(s)
    kl = np.sum(p * np.log(p / q), axis=1)
    np.testing.assert_allclose(np.asarray(distillation_kl(jnp.asarray(s), jnp.asarray(t), temperature)), kl,
                               rtol=1e-5)
    assert float(jnp.max(jnp.abs(distillation_kl(jnp.asarray(t), jnp.asarray(t), temperature)))) < 1e-7

    jet = task(T=temperature, **{"lambda": 0.8}, lambda_decay=0.5)
    label, weight = np.array([1.0, 0.0]), np.array([1.0, 2.0])
    b = batch(label, weight, teacher=t)
    ce = np.array([bce(x, y) for x, y in zip(s, label)])
    for step in (0, 3):
        lam = 0.8 * 0.5 ** step
        want = np.sum(weight * ((1 - lam) * ce + lam * temperature ** 2 * kl))
        got = float(jet.train_loss_sum(jnp.asarray(s[:, None]), b, step))
        np.testing.assert_allclose(got, want, rtol=1e-5)
    # validation loss: the weighted BCE alone
    np.testing.assert_allclose(float(jet.loss_sum(jnp.asarray(s[:, None]), b)), np.sum(weight * ce), rtol=1e-6)


def _jet_batch(teacher):
    jets = synthetic_jets(8)
    graphs = jet_graphs(jets, 16, "p4", teacher_logits=teacher)
    cfg = B.default_batching_config()
    cfg.graphs_per_step, cfg.max_buckets, cfg.shuffle = 8, 1, False
    return next(B.batch_iterator(graphs, cfg, 1)).device_batch()


def test_the_train_step_hands_the_task_its_step():
    # lambda 1 decaying by 0.5 a step: at step 0 the loss is pure distillation, at step 200
    # (lambda ~ 1e-60) it is the plain BCE of the task without a teacher
    batch_ = _jet_batch(np.full(8, 3.0, np.float32))
    model = build_model(dict(default_model_config("jet_fc").to_dict(), hidden=(8,), max_constituents=16,
                                     dropout=0.0))  # the dropout mask changes with the step
    tx, _ = optim.make_optimizer(optim.default_optimizer_config(), 1)
    state = S.init_train_state(model, tx, S.device_slice(batch_.graph), seed=0)

    def loss_at(jet, step):
        fn = jax.vmap(T.make_train_step(model, tx, None, task=jet), in_axes=(None, 0), axis_name="devices")
        return float(fn(state.replace(step=jnp.int32(step)), batch_)[1]["loss"][0])

    kd = task(**{"lambda": 1.0}, lambda_decay=0.5)
    plain = loss_at(task(), 0)
    np.testing.assert_allclose(loss_at(kd, 200), plain, rtol=1e-6)
    assert abs(loss_at(kd, 0) - plain) > 1e-3


def test_rejection_and_metrics():
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.65, 0.3, 0.2, 0.1])
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    # 50 % of the signal passes above 0.75: no background there -> at least 1/(1/4) = 4
    assert background_rejection(scores, labels, 0.5) == 4.0
    # keeping all of the signal (cut at 0.6) lets 1 of 4 background jets through
    assert background_rejection(scores, labels, 1.0) == 4.0
    m = jet_metrics(scores, labels)
    assert m["accuracy"] == 7 / 8 and m["auc"] == 15 / 16 and m["rejection_0.3"] == 4.0


def test_the_test_summary_has_bootstrap_intervals_and_validation_none():
    rng = np.random.default_rng(0)
    labels = np.arange(200) % 2
    scores = np.clip(0.3 * labels + rng.uniform(0, 0.7, 200), 0, 1)
    graphs = [types.SimpleNamespace(graph_y=np.array([y, 1.0], np.float32)) for y in labels]
    preds = {"scores": [np.array([s]) for s in scores]}
    jet = task(n_boot=50)
    val = jet.summary(preds, graphs, prefix="val_", loss=0.5)
    assert "val_auc_low" not in val and val["n_val_items"] == 200
    test = jet.summary(preds, graphs, prefix="test_")
    assert test["test_auc_low"] < test["test_auc"] < test["test_auc_high"]
    assert test["test_rejection_0.5_low"] <= test["test_rejection_0.5"] <= test["test_rejection_0.5_high"]


def test_task_config_errors_name_the_key():
    for key, value in (("T", 0.0), ("lambda", 1.5), ("lambda_decay", 0.0), ("n_boot", -1), ("ci_level", 1.0)):
        with pytest.raises(ConfigError, match=rf"task\.{key}"):
            task(**{key: value})
    with pytest.raises(ConfigError, match="teacher_dir"):
        task(**{"lambda": 0.5}).attach_targets(jet_graphs(synthetic_jets(2), 8, "p4")[0])
    with pytest.raises(ConfigError, match="unknown key|task.temperature|temperature"):
        tasks.make_task(ml_collections.ConfigDict(dict(name="jet", temperature=2.0)))
