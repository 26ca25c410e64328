"""Fit of the large-batch trade-off (S/S_min − 1)(E/E_min − 1) = 1 (McCandlish et al. 2018).

With S the steps and E = B·S the examples to reach a target, the relation is equivalent to
S(B) = S_min (1 + B_crit / B) with B_crit = E_min / S_min, so the fit is a two-parameter
least-squares fit of log S against B (log space: steps span orders of magnitude).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy.optimize import least_squares


@dataclasses.dataclass(frozen=True)
class BatchFit:
    """Fitted S_min (steps), E_min (examples) and B_crit = E_min / S_min (examples per step)."""

    s_min: float
    e_min: float
    b_crit: float
    rms_log_residual: float

    def steps(self, batch_size: np.ndarray) -> np.ndarray:
        """Predicted steps to target at the given batch sizes."""
        return self.s_min * (1.0 + self.b_crit / np.asarray(batch_size, dtype=float))

    def examples(self, batch_size: np.ndarray) -> np.ndarray:
        return self.steps(batch_size) * np.asarray(batch_size, dtype=float)


def fit_steps_to_target(batch_sizes, steps) -> BatchFit:
    """Fits S(B) = S_min (1 + B_crit/B) to measured (batch size, steps-to-target) pairs.

    Args:
      batch_sizes: [K] global batch sizes (graphs or edges per step; E_min is in the same unit).
      steps: [K] steps to reach the target (finite, > 0). Needs K >= 2 distinct batch sizes.
    """
    b = np.asarray(batch_sizes, dtype=float)
    s = np.asarray(steps, dtype=float)
    keep = np.isfinite(s) & (s > 0) & (b > 0)
    b, s = b[keep], s[keep]
    if np.unique(b).size < 2:
        raise ValueError("need steps-to-target at two or more distinct batch sizes to fit S_min, B_crit")

    def residual(p):
        log_s_min, log_b_crit = p
        return np.log(np.exp(log_s_min) * (1.0 + np.exp(log_b_crit) / b)) - np.log(s)

    # start: S_min from the largest batch, B_crit from the geometric middle of the batch range
    start = np.array([np.log(s.min()), np.log(np.sqrt(b.min() * b.max()))])
    result = least_squares(residual, start)
    s_min, b_crit = np.exp(result.x)
    return BatchFit(s_min=float(s_min), e_min=float(s_min * b_crit), b_crit=float(b_crit),
                    rms_log_residual=float(np.sqrt(np.mean(result.fun ** 2))))
