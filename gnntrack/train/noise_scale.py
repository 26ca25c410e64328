"""Gradient noise scale (McCandlish et al. 2018, "An Empirical Model of Large-Batch Training").

The simple noise scale is B_simple = tr(Σ) / |G|², where G is the true gradient and Σ the
per-example gradient covariance. With squared gradient norms measured at two batch sizes
(B_small: one device's batch, B_big: the global batch), the unbiased estimates are

    |G|²  ≈ (B_big |G_big|² − B_small |G_small|²) / (B_big − B_small)
    tr(Σ) ≈ (|G_small|² − |G_big|²) / (1 / B_small − 1 / B_big)

Each single-step estimate is very noisy (and can be negative), so numerator and denominator are
smoothed separately with exponential moving averages before taking the ratio, as the paper does.
Batch sizes can be counted in graphs or in edges; B_simple comes out in the same unit.
"""

from __future__ import annotations

import dataclasses


def two_batch_estimates(norm_sq_small: float, norm_sq_big: float, b_small: float, b_big: float
                        ) -> tuple[float, float]:
    """Unbiased single-step estimates (|G|², tr Σ) from two squared gradient norms.

    Args:
      norm_sq_small: |G_small|², the mean over devices of each device's squared gradient norm.
      norm_sq_big: |G_big|², squared norm of the gradient averaged over all devices.
      b_small, b_big: the batch sizes those gradients were averaged over (b_big > b_small).
    """
    if not b_big > b_small > 0:
        raise ValueError(f"need b_big > b_small > 0, got b_small={b_small}, b_big={b_big}")
    g_sq = (b_big * norm_sq_big - b_small * norm_sq_small) / (b_big - b_small)
    trace_sigma = (norm_sq_small - norm_sq_big) / (1.0 / b_small - 1.0 / b_big)
    return float(g_sq), float(trace_sigma)


@dataclasses.dataclass
class NoiseScaleTracker:
    """Running B_simple from per-step gradient norms (EMA of |G|² and tr Σ separately).

    Attributes:
      decay: EMA decay per update (0.95 ≈ a 20-step window).
    """

    decay: float = 0.95
    _g_sq: float = 0.0
    _trace: float = 0.0
    _weight: float = 0.0  # bias correction for the EMA start, as in Adam

    def update(self, norm_sq_small: float, norm_sq_big: float, b_small: float, b_big: float) -> float:
        """Adds one step's measurement and returns the current B_simple estimate (nan if undefined)."""
        g_sq, trace = two_batch_estimates(norm_sq_small, norm_sq_big, b_small, b_big)
        self._g_sq = self.decay * self._g_sq + (1 - self.decay) * g_sq
        self._trace = self.decay * self._trace + (1 - self.decay) * trace
        self._weight = self.decay * self._weight + (1 - self.decay)
        return self.value

    @property
    def g_sq(self) -> float:
        return self._g_sq / self._weight if self._weight else float("nan")

    @property
    def trace_sigma(self) -> float:
        return self._trace / self._weight if self._weight else float("nan")

    @property
    def value(self) -> float:
        """B_simple = tr(Σ)/|G|²; nan until |G|² is positive."""
        g_sq = self.g_sq
        return self.trace_sigma / g_sq if g_sq > 0 else float("nan")


def step_measurement(metrics) -> tuple[float, float, float, float] | None:
    """(norm_sq_small, norm_sq_big, b_small, b_big) from one train step's metrics (keys
    grad_norm_sq_local, grad_norm_sq_global, B_small, B_big as gnntrack.train.step returns them),
    or None when undefined: with one active device the two batches coincide."""
    b_small, b_big = float(metrics["B_small"]), float(metrics["B_big"])
    if not b_big > b_small > 0:
        return None
    return float(metrics["grad_norm_sq_local"]), float(metrics["grad_norm_sq_global"]), b_small, b_big
