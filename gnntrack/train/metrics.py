"""Edge-classification metrics on the host (numpy), counting real edges only.

Vocabulary used across gnntrack (HEP.TrkX's): precision = purity, recall = efficiency.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata


def edge_metrics(scores: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Accuracy, precision (purity), recall (efficiency), F1 and ROC AUC.

    Args:
      scores: float [E], edge probabilities in [0, 1].
      labels: [E], 1 for true edges (bool or 0/1).
      threshold: an edge is predicted true when score >= threshold.

    Returns:
      dict with accuracy, precision, recall, f1, auc, n_edges, n_true, threshold. Ratios with an
      empty denominator are reported as 0.0 (e.g. precision when nothing is predicted true).
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel().astype(bool)
    if scores.shape != labels.shape:
        raise ValueError(f"scores {scores.shape} and labels {labels.shape} differ in shape")
    predicted = scores >= threshold
    tp = int(np.sum(predicted & labels))
    fp = int(np.sum(predicted & ~labels))
    fn = int(np.sum(~predicted & labels))
    n = scores.size
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    return {
        "accuracy": _ratio(n - fp - fn, n),
        "precision": precision,
        "recall": recall,
        "f1": _ratio(2 * precision * recall, precision + recall),
        "auc": roc_auc(scores, labels),
        "n_edges": n,
        "n_true": int(labels.sum()),
        "threshold": float(threshold),
    }


def metrics_at_thresholds(scores: np.ndarray, labels: np.ndarray, thresholds) -> dict[str, dict[str, float]]:
    """`edge_metrics` at each threshold, keyed by the threshold formatted as e.g. '0.5'."""
    return {f"{t:g}": edge_metrics(scores, labels, t) for t in thresholds}


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve via the Mann-Whitney rank statistic (ties count one half).

    Returns nan when only one class is present (AUC is undefined there).
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel().astype(bool)
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)  # average ranks handle ties
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def roc_curve(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False-positive rate, true-positive rate and thresholds, from the highest score down.

    Returns arrays of equal length starting at (0, 0); one point per distinct score.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel().astype(bool)
    order = np.argsort(-scores, kind="stable")
    sorted_scores = scores[order]
    sorted_labels = labels[order]
    # last index of each run of equal scores: the curve only moves between distinct thresholds
    distinct = np.r_[np.nonzero(np.diff(sorted_scores))[0], scores.size - 1] if scores.size else np.array([], int)
    tps = np.cumsum(sorted_labels)[distinct]
    fps = (distinct + 1) - tps
    n_pos = max(int(labels.sum()), 1)
    n_neg = max(int((~labels).sum()), 1)
    tpr = np.r_[0.0, tps / n_pos]
    fpr = np.r_[0.0, fps / n_neg]
    thresholds = np.r_[np.inf, sorted_scores[distinct]]
    return fpr, tpr, thresholds


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator) / float(denominator) if denominator else 0.0
