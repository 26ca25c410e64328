"""Bootstrap confidence intervals by resampling events.

Events are the independent units: a resample draws n_events events with replacement, and each
metric is recomputed from the resampled per-event table. Ratio metrics (efficiency, fake rate,
...) are pooled, sum(numerator) / sum(denominator), exactly as the point estimate; per-event
metrics (TrackML score, edge AUC of an event) are averaged. Intervals are percentile intervals.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd

# metric spec: ("ratio", numerator column, denominator column)  -> sum(num) / sum(den)
#              ("ratio_complement", num, den)                    -> 1 - sum(num) / sum(den)
#              ("ratio_diff", a, b, den)                         -> (sum(a) - sum(b)) / sum(den)
#              ("mean", column)                                  -> mean over events
#              ("auc_hist", pos, neg)  -> ROC AUC of the summed per-event score histograms
#                                         (columns of [n_bins] arrays: true / fake edges per bin)


def auc_from_histograms(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """ROC AUC from score histograms ([..., n_bins] counts of true / fake edges, bins ascending).

    Pairs in the same bin count one half (exact for scores that are equal within a bin).
    """
    pos = np.asarray(pos, np.float64)
    neg = np.asarray(neg, np.float64)
    neg_below = np.cumsum(neg, axis=-1) - neg
    num = np.sum(pos * (neg_below + 0.5 * neg), axis=-1)
    den = pos.sum(axis=-1) * neg.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / den, np.nan)


def _evaluate(spec: tuple, table: Mapping[str, np.ndarray], weights: np.ndarray) -> np.ndarray:
    """Metric value per resample; weights [B, n_events] are the event multiplicities."""
    def tot(col):
        values = np.asarray(table[col], np.float64)
        return weights @ values.reshape(values.shape[0], -1) if values.ndim > 1 else weights @ values

    kind = spec[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "mean":
            return tot(spec[1]) / weights.sum(axis=1)
        if kind == "ratio":
            den = tot(spec[2])
            return np.where(den > 0, tot(spec[1]) / den, np.nan)
        if kind == "ratio_complement":
            den = tot(spec[2])
            return np.where(den > 0, 1.0 - tot(spec[1]) / den, np.nan)
        if kind == "ratio_diff":
            den = tot(spec[3])
            return np.where(den > 0, (tot(spec[1]) - tot(spec[2])) / den, np.nan)
        if kind == "auc_hist":
            return auc_from_histograms(tot(spec[1]), tot(spec[2]))
    raise ValueError(f"unknown metric kind {kind!r}")


def resample_weights(n_events: int, n_boot: int, seed: int = 0) -> np.ndarray:
    """float64 [n_boot, n_events]: how often each event is drawn in each resample (n_events draws
    with replacement). Sums over resampled events become one matrix product, and metrics that
    are no sums (quantiles of pooled jets) weight their items by their event's multiplicity;
    the same seed gives the same resamples, so metrics of one evaluation are paired."""
    draws = np.random.default_rng(seed).integers(0, n_events, size=(n_boot, n_events))
    weights = np.zeros((n_boot, n_events))
    np.add.at(weights, (np.repeat(np.arange(n_boot), n_events), draws.ravel()), 1.0)
    return weights


def bootstrap_metrics(table: pd.DataFrame | Mapping[str, np.ndarray], specs: Mapping[str, tuple], *,
                      n_boot: int = 1000, level: float = 0.95, seed: int = 0) -> dict[str, dict[str, float]]:
    """Point estimate and percentile bootstrap interval of each metric.

    Args:
      table: per-event columns (one row per event); "auc_hist" columns hold one histogram
        array per event (a DataFrame object column or a list of arrays).
      specs: metric name -> spec (see the module comment), e.g.
        {"efficiency": ("ratio", "n_matched_particles", "n_particles"), "trackml_score": ("mean", "score")}.
      n_boot: resamples; level: central interval probability; seed: RNG seed (deterministic).

    Returns:
      name -> {value, ci_low, ci_high, level, n_events, n_boot}. With a single event the interval
      is omitted (ci_low/ci_high nan): one event says nothing about event-to-event spread.
    """
    if isinstance(table, pd.DataFrame):
        cols = {k: (np.stack(table[k].to_numpy()) if table[k].dtype == object else table[k].to_numpy())
                for k in table.columns}
    else:
        cols = {k: (np.stack(v) if len(v) and np.ndim(v[0]) else np.asarray(v)) for k, v in table.items()}
    n_events = len(next(iter(cols.values()))) if cols else 0
    resample = resample_weights(n_events, n_boot, seed) if n_events > 1 else None
    out = {}
    for name, spec in specs.items():
        value = float(_evaluate(spec, cols, np.ones((1, n_events)))[0]) if n_events else float("nan")
        lo = hi = float("nan")
        if resample is not None:
            boots = _evaluate(spec, cols, resample)
            boots = boots[np.isfinite(boots)]
            if boots.size:
                lo, hi = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2])
        out[name] = {"value": value, "ci_low": float(lo), "ci_high": float(hi), "level": level,
                     "n_events": int(n_events), "n_boot": int(n_boot if resample is not None else 0)}
    return out
