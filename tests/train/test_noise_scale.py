"""The two-batch noise-scale estimator recovers tr(Σ)/|G|² on a synthetic problem, and the
batch-size trade-off fit recovers S_min and B_crit from exact data."""

import numpy as np
import pytest

from gnntrack.studies.batch_fit import fit_steps_to_target
from gnntrack.train.noise_scale import NoiseScaleTracker, two_batch_estimates


def _synthetic_norms(rng, true_grad, noise_std, b_small, n_devices):
    """Per-example gradients g_i = G + ε_i, ε ~ N(0, σ² I): device means and their global mean."""
    dim = true_grad.size
    per_device = true_grad + noise_std * rng.standard_normal((n_devices, b_small, dim)).mean(axis=1)
    small = float(np.mean(np.sum(per_device ** 2, axis=1)))
    big = float(np.sum(per_device.mean(axis=0) ** 2))
    return small, big


def b_simple_from_arrays(norm_sq_small: np.ndarray, norm_sq_big: np.ndarray, b_small: np.ndarray,
                         b_big: np.ndarray) -> float:
    """B_simple from whole logged series (mean of the unbiased estimates, then the ratio)."""
    estimates = np.array([two_batch_estimates(s, b, bs, bb)
                          for s, b, bs, bb in zip(norm_sq_small, norm_sq_big, b_small, b_big)])
    g_sq, trace = estimates.mean(axis=0)
    return float(trace / g_sq) if g_sq > 0 else float("nan")


def test_estimator_recovers_known_noise_scale():
    rng = np.random.default_rng(0)
    dim, noise_std, b_small, n_devices = 50, 2.0, 8, 4
    true_grad = rng.standard_normal(dim) * 0.5
    expected = dim * noise_std ** 2 / np.sum(true_grad ** 2)  # tr Σ / |G|² with Σ = σ² I
    tracker = NoiseScaleTracker(decay=0.999)
    smalls, bigs = [], []
    for _ in range(3000):
        small, big = _synthetic_norms(rng, true_grad, noise_std, b_small, n_devices)
        smalls.append(small)
        bigs.append(big)
        tracker.update(small, big, b_small, b_small * n_devices)
    assert tracker.value == pytest.approx(expected, rel=0.1)
    n = len(smalls)
    batch_estimate = b_simple_from_arrays(np.array(smalls), np.array(bigs), np.full(n, b_small),
                                          np.full(n, b_small * n_devices))
    assert batch_estimate == pytest.approx(expected, rel=0.1)


def test_two_batch_estimates_are_exact_on_expectations():
    g_sq, trace, bs, bb = 3.0, 12.0, 4.0, 16.0
    small = g_sq + trace / bs
    big = g_sq + trace / bb
    assert two_batch_estimates(small, big, bs, bb) == pytest.approx((g_sq, trace))
    with pytest.raises(ValueError):
        two_batch_estimates(small, big, bb, bs)


def test_fit_recovers_s_min_and_b_crit():
    batch = np.array([8, 16, 32, 64, 128, 256, 512])
    s_min, b_crit = 200.0, 60.0
    steps = s_min * (1 + b_crit / batch)
    fit = fit_steps_to_target(batch, steps)
    assert fit.s_min == pytest.approx(s_min, rel=1e-4)
    assert fit.b_crit == pytest.approx(b_crit, rel=1e-4)
    assert fit.e_min == pytest.approx(s_min * b_crit, rel=1e-4)
    # the defining relation holds on the fitted curve
    s, e = fit.steps(batch), fit.examples(batch)
    assert np.allclose((s / fit.s_min - 1) * (e / fit.e_min - 1), 1.0)


def test_fit_needs_two_batch_sizes():
    with pytest.raises(ValueError, match="two or more"):
        fit_steps_to_target([32, 32], [100, 110])
