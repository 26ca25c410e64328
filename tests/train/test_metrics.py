"""Edge metrics: hand-computed cases and agreement between AUC and the ROC curve's area."""

import numpy as np
import pytest

from gnntrack.train.metrics import edge_metrics, metrics_at_thresholds, roc_auc, roc_curve


def test_hand_computed_confusion_matrix():
    scores = np.array([0.9, 0.8, 0.3, 0.6, 0.1, 0.2])
    labels = np.array([1, 1, 1, 0, 0, 0])
    m = edge_metrics(scores, labels, threshold=0.5)
    # predicted true: 0.9, 0.8, 0.6 -> tp=2, fp=1, fn=1, tn=2
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["f1"] == pytest.approx(2 / 3)
    # pairs (pos, neg) ordered correctly: 0.9,0.8 beat all 3 negatives; 0.3 beats 0.1,0.2 -> 8/9
    assert m["auc"] == pytest.approx(8 / 9)


def test_auc_handles_ties_and_matches_trapezoid_area():
    rng = np.random.default_rng(0)
    labels = rng.random(500) < 0.3
    scores = np.round(rng.random(500) * 0.5 + 0.4 * labels, 1)  # many ties
    fpr, tpr, _ = roc_curve(scores, labels)
    assert roc_auc(scores, labels) == pytest.approx(np.trapezoid(tpr, fpr), abs=1e-12)
    assert fpr[0] == 0 and tpr[0] == 0 and fpr[-1] == 1 and tpr[-1] == 1


def test_degenerate_inputs():
    assert np.isnan(roc_auc(np.array([0.2, 0.7]), np.array([1, 1])))
    m = edge_metrics(np.array([0.1, 0.2]), np.array([0, 0]))
    assert m["precision"] == 0.0 and m["recall"] == 0.0 and m["accuracy"] == 1.0


def test_thresholds_are_monotone_in_recall():
    rng = np.random.default_rng(1)
    labels = rng.random(200) < 0.5
    scores = np.clip(rng.normal(0.5 + 0.2 * (labels - 0.5), 0.2), 0, 1)
    table = metrics_at_thresholds(scores, labels, [0.3, 0.5, 0.7])
    recalls = [table[k]["recall"] for k in ("0.3", "0.5", "0.7")]
    assert recalls == sorted(recalls, reverse=True)
