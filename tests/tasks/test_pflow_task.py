"""The 'pflow' task: the loss is the weighted sum over real elements of a focal class loss and,
for elements with a particle, charge cross-entropy and a Huber loss on (log pt, eta, sin φ,
cos φ, log E); padding is in no loss, count or prediction; the metrics count per class; a toy
run trains through the engine (`train_and_evaluate` with experiments/pflow/smoke.py)."""

from pathlib import Path

import jraph
import numpy as np
import pytest

from gnntrack import tasks
from gnntrack.errors import ConfigError
from gnntrack.graphs import batching as B
from gnntrack.pflow.types import ELEMENT_FEATURES
from gnntrack.tasks.pflow import PflowTask, particle_flow_metrics
from gnntrack.testing import pflow_events

SMOKE = Path(__file__).resolve().parents[2] / "experiments" / "pflow" / "smoke.py"


def task_of(**keys):
    cfg = tasks.default_task_config("pflow")
    cfg.update(keys)
    return tasks.make_task(cfg)


def _batch(y, mask, nodes=None):
    """A one-device batch of elements with targets y; element features `nodes` (default zeros,
    whose kinematics make 'relative' targets equal the absolute ones)."""
    nodes = np.zeros((len(y), len(ELEMENT_FEATURES)), np.float32) if nodes is None else nodes
    graph = jraph.GraphsTuple(nodes=nodes, edges=None, senders=None, receivers=None, globals=None,
                              n_node=np.array([len(y)]), n_edge=np.array([0]))
    return B.DeviceBatch(graph=graph, y=np.zeros(1), edge_mask=np.zeros(1, bool), node_mask=mask,
                         graph_mask=np.ones(1, bool), node_y=y)


def _huber(err, delta):
    a = np.abs(err)
    return np.where(a <= delta, 0.5 * err ** 2, delta * (a - 0.5 * delta))


def test_the_loss_is_the_weighted_sum_of_focal_charge_and_huber_over_real_elements():
    rng = np.random.default_rng(0)
    task = task_of(focal_gamma=2.0, huber_delta=0.5, class_weight=2.0, charge_weight=0.5, momentum_weight=3.0)
    assert task.output_width == 14 and task.level == "node"
    outputs = rng.normal(size=(7, 14)).astype(np.float32)
    y = np.zeros((7, 7), np.float32)
    y[:, 0] = [0, 1, 2, 3, 4, 5, 1]
    y[:, 1] = [0, 1, 0, 0, -1, 1, -1]
    y[1:, 2:] = rng.uniform(0.5, 20, (6, 5))
    mask = np.array([True] * 5 + [False] * 2)  # two padding elements
    logits = outputs[:, :6] - outputs[:, :6].max(1, keepdims=True)
    log_p = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    lp = log_p[np.arange(7), y[:, 0].astype(int)]
    focal = -((1 - np.exp(lp)) ** 2) * lp
    q = outputs[:, 6:9] - outputs[:, 6:9].max(1, keepdims=True)
    ce = np.log(np.exp(q).sum(1)) - q[np.arange(7), y[:, 1].astype(int) + 1]
    target = y[:, 2:].copy()
    target[:, [0, 4]] = np.log1p(target[:, [0, 4]])
    huber = _huber(outputs[:, 9:] - target, 0.5).sum(1)
    particle = y[:, 0] > 0
    expected = np.sum((2.0 * focal + np.where(particle, 0.5 * ce + 3.0 * huber, 0.0))[mask])
    np.testing.assert_allclose(float(task.loss_sum(outputs, _batch(y, mask))), expected, rtol=1e-5)
    assert float(task.count(_batch(y, mask))) == 5.0
    # gamma 0 is plain cross-entropy on the class head
    plain = task_of(focal_gamma=0.0, charge_weight=0.0, momentum_weight=0.0)
    np.testing.assert_allclose(float(plain.loss_sum(outputs, _batch(y, mask))), np.sum(-lp[mask]), rtol=1e-5)
    # per-class weights multiply each element's class term by its true class's weight
    weights = (0.5, 1.0, 2.0, 1.0, 10.0, 20.0)
    weighted = task_of(focal_gamma=0.0, charge_weight=0.0, momentum_weight=0.0, class_weights=weights)
    w = np.array(weights)[y[:, 0].astype(int)]
    np.testing.assert_allclose(float(weighted.loss_sum(outputs, _batch(y, mask))), np.sum((-lp * w)[mask]),
                               rtol=1e-5)


def test_relative_targets_are_the_momentum_minus_the_elements_own_in_the_regression_space():
    rng = np.random.default_rng(1)
    y = np.zeros((4, 7), np.float32)
    y[:, 0], y[:, 1] = [1, 2, 3, 0], [1, 0, 0, 0]
    y[:3, 2:] = rng.uniform(0.5, 20, (3, 5))
    nodes = np.zeros((4, len(ELEMENT_FEATURES)), np.float32)
    nodes[:, 2:7] = rng.uniform(0.5, 20, (4, 5))  # pt_or_et, eta, sin_phi, cos_phi, energy_or_p
    mask = np.ones(4, bool)
    relative, absolute = task_of(class_weight=0.0, charge_weight=0.0), task_of(momentum_targets="absolute",
                                                                               class_weight=0.0, charge_weight=0.0)
    batch = _batch(y, mask, nodes)

    def regression(v):
        v = v.copy()
        v[:, [0, 4]] = np.log1p(v[:, [0, 4]])
        return v

    outputs = np.zeros((4, 14), np.float32)
    outputs[:, 9:] = rng.normal(size=(4, 5))
    expected = _huber(outputs[:, 9:] - (regression(y[:, 2:]) - regression(nodes[:, 2:7])), 1.0).sum(1)
    np.testing.assert_allclose(float(relative.loss_sum(outputs, batch)), expected[:3].sum(), rtol=1e-5)
    # predicting zero corrections gives back each element's own kinematics (GeV)
    np.testing.assert_allclose(relative.predict(np.zeros((4, 14), np.float32), batch)["values"], nodes[:, 2:7],
                               rtol=1e-5)
    assert np.allclose(absolute.predict(np.zeros((4, 14), np.float32), batch)["values"], 0.0)
    # a run saved before the key existed trained on absolute targets
    old = tasks.default_task_config("pflow")
    del old["momentum_targets"]
    assert PflowTask.from_config(old).momentum_targets == "absolute"
    with pytest.raises(ConfigError, match=r"task\.momentum_targets"):
        task_of(momentum_targets="ratio")


def test_predictions_are_probabilities_and_GeV_and_zero_on_padding():
    task = task_of()
    outputs = np.zeros((3, 14), np.float32)
    outputs[:, 9:] = [np.log1p(10.0), 1.5, 0.6, 0.8, np.log1p(25.0)]
    preds = task.predict(outputs, _batch(np.zeros((3, 7), np.float32), np.array([True, True, False])))
    np.testing.assert_allclose(np.asarray(preds["values"])[0], [10.0, 1.5, 0.6, 0.8, 25.0], rtol=1e-5)
    np.testing.assert_allclose(np.asarray(preds["scores"])[:2].sum(1), 1.0, rtol=1e-6)
    assert all(not np.asarray(v)[2].any() for v in preds.values())


def test_metrics_count_efficiency_fake_rate_and_response_per_class():
    true = np.array([0, 1, 1, 1, 3, 3, 0, 2])
    pred = np.array([1, 1, 1, 0, 3, 2, 0, 2])
    y = np.zeros((8, 7))
    y[:, 0] = true
    y[true > 0, 2] = 10.0
    y[true > 0, 6] = 20.0
    scores = np.eye(6)[pred]
    values = np.zeros((8, 5))
    values[:, 0] = [0, 9, 11, 0, 10, 12, 0, 8]  # pt for the 5 elements that are and said particles
    values[:, 4] = 20.0
    m = particle_flow_metrics(scores, np.tile([0.0, 1.0, 0.0], (8, 1)), values, y)
    assert m["efficiency_charged_hadron"] == 2 / 3 and m["fake_rate_charged_hadron"] == 1 / 3
    assert m["efficiency_photon"] == 0.5 and m["fake_rate_photon"] == 0.0
    assert m["efficiency_neutral_hadron"] == 1.0 and m["fake_rate_neutral_hadron"] == 0.5
    assert np.isnan(m["efficiency_muon"]) and np.isnan(m["fake_rate_muon"])
    assert m["recall"] == 5 / 6 and m["precision"] == 5 / 6 and m["accuracy"] == 5 / 8
    ratio = np.array([9, 11, 10, 12, 8]) / 10.0  # pt response over the 5 matched elements
    assert m["pt_response"] == pytest.approx(np.median(ratio))
    q25, q75 = np.percentile(ratio, [25, 75])
    assert m["pt_resolution"] == pytest.approx((q75 - q25) / np.median(ratio))
    assert m["energy_response"] == 1.0 and m["energy_resolution"] == 0.0


@pytest.mark.parametrize("key, value, match", [
    ("focal_gamma", -1.0, r"'task.focal_gamma' must be a number >= 0"),
    ("huber_delta", 0.0, r"'task.huber_delta' must be > 0"),
    ("charge_weigth", 1.0, r"task.charge_weigth.*charge_weight"),
    ("class_weights", (1.0, 2.0), r"'task.class_weights' must be empty or 6 numbers"),
    ("class_weights", (1.0, 1.0, 1.0, 1.0, 1.0, -1.0), r"'task.class_weights' must be empty or 6 numbers"),
])
def test_config_errors_name_the_key(key, value, match):
    with pytest.raises(ConfigError, match=match):
        task_of(**{key: value})


def test_graphs_without_element_targets_are_refused_naming_the_event():
    graph = pflow_events(1)[0]
    graph.node_y = graph.node_y[:, :3]
    with pytest.raises(ConfigError, match=r"task 'pflow' needs .* 7 target columns.*event 0"):
        task_of().attach_targets(graph)


def test_a_toy_particle_flow_run_trains_through_the_engine(tmp_path):
    from gnntrack.config import load_config
    from gnntrack.train.loop import load_scores, train_and_evaluate

    result = train_and_evaluate(load_config(SMOKE, ["train.steps=4"]), tmp_path / "run")
    assert result["steps"] == 4 and np.isfinite(result["test_loss"]) and np.isfinite(result["val_auc"])
    assert 0.0 <= result["test_efficiency_charged_hadron"] <= 1.0
    preds = load_scores(tmp_path / "run" / "test_predictions.npz")
    n = result["n_test_items"]
    assert preds["scores"].shape == (n, 6) and preds["charge"].shape == (n, 3) and preds["values"].shape == (n, 5)
