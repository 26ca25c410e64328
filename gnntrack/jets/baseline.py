"""Cut-based baselines that a tagger must beat: the jet mass window and a mass x multiplicity likelihood.

    score = mass_window_score(jets)                 # -|m - m_top|: higher = more top-like
    auc = roc_auc(score, jets.label)
    score = likelihood_ratio_score(train, jets)     # log p_top(m, n) / p_qcd(m, n) from train's histograms

Units: GeV.
"""

from __future__ import annotations

import numpy as np

from gnntrack.jets.formats import take_jets
from gnntrack.jets.types import SIGNAL, JetArrays
from gnntrack.train.metrics import roc_auc

TOP_MASS = 172.5  # GeV
MASS_BINS = np.linspace(0.0, 400.0, 41)  # GeV, 10 GeV wide
COUNT_BINS = np.arange(0, 205, 5)  # constituents, 5 wide


def jet_mass(jets: JetArrays) -> np.ndarray:
    """float64 [J]: invariant mass of the jet four-vector (0 where m^2 < 0 from rounding)."""
    p = jets.jet.astype(np.float64)
    return np.sqrt(np.maximum(p[:, 0] ** 2 - np.sum(p[:, 1:] ** 2, axis=1), 0.0))


def mass_window_score(jets: JetArrays, mass: float = TOP_MASS) -> np.ndarray:
    """float64 [J]: -|m_jet - mass|; cutting on it is a mass window centred on `mass`."""
    return -np.abs(jet_mass(jets) - mass)


def likelihood_ratio_score(train: JetArrays, jets: JetArrays) -> np.ndarray:
    """float64 [J]: log of the ratio of the top and QCD densities in (mass, constituent count),
    estimated from `train`'s 2-D histograms (plus one count per bin, so empty bins stay finite)."""
    def density(sample: JetArrays, signal: bool) -> np.ndarray:
        keep = (sample.label == SIGNAL) == signal
        hist, _, _ = np.histogram2d(jet_mass(sample)[keep], sample.n_constituents[keep],
                                    bins=(MASS_BINS, COUNT_BINS), weights=sample.weight[keep])
        return (hist + 1.0) / (hist.sum() + hist.size)

    ratio = np.log(density(train, True)) - np.log(density(train, False))
    i = np.clip(np.digitize(jet_mass(jets), MASS_BINS) - 1, 0, MASS_BINS.size - 2)
    j = np.clip(np.digitize(jets.n_constituents, COUNT_BINS) - 1, 0, COUNT_BINS.size - 2)
    return ratio[i, j]


def baseline_aucs(jets: JetArrays, seed: int = 0) -> dict[str, float]:
    """ROC AUC of the mass window on all jets, and of the likelihood ratio fitted on a random half
    and evaluated on the other half; nan where a class is missing."""
    half = np.random.default_rng(seed).permutation(len(jets)) < len(jets) // 2
    train, test = take_jets(jets, half), take_jets(jets, ~half)
    return {"mass_window": roc_auc(mass_window_score(jets), jets.label),
            "mass_count_likelihood": roc_auc(likelihood_ratio_score(train, test), test.label)
            if len(train) and len(test) else float("nan")}

