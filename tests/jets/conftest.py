"""Synthetic jets for the model and engine tests (not physics): 'top' jets have three hard
prongs about 0.3-0.5 apart in (eta, phi), QCD jets one core, so a small model learns to tell
them apart within a few dozen steps."""

import numpy as np
import pytest

from gnntrack.jets.formats import write_reference_h5
from gnntrack.jets.types import BACKGROUND, SIGNAL, JetArrays


def _massless(pt, eta, phi):
    """(E, px, py, pz) [..., 4] of massless particles."""
    return np.stack([pt * np.cosh(eta), pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)], axis=-1)


def synthetic_jets(n_jets: int, seed: int = 0, n_max: int = 50, weights: bool = False) -> JetArrays:
    """Half top (label 1), half QCD jets at pT ~ 600 GeV, |eta| < 1; constituents sorted by pT."""
    rng = np.random.default_rng(seed)
    label = (np.arange(n_jets) % 2).astype(np.int8)
    constituents = np.zeros((n_jets, n_max, 4), np.float32)
    for j in range(n_jets):
        top = label[j] == SIGNAL
        n = int(rng.integers(25, n_max + 1) if top else rng.integers(12, 36))
        eta0, phi0 = rng.uniform(-1, 1), rng.uniform(-np.pi, np.pi)
        if top:
            angle = rng.uniform(0, 2 * np.pi) + np.array([0.0, 2.1, 4.2])
            radius = rng.uniform(0.25, 0.45, 3)
            centres = np.stack([radius * np.cos(angle), radius * np.sin(angle)], 1)
            prong = rng.integers(0, 3, n)
            spread = 0.05
        else:
            centres, prong, spread = np.zeros((1, 2)), np.zeros(n, int), 0.12
        d = centres[prong] + rng.normal(0, spread, (n, 2))
        pt = rng.exponential(1.0, n) + 0.05
        pt = 600.0 * pt / pt.sum()
        order = np.argsort(-pt)
        constituents[j, :n] = _massless(pt[order], eta0 + d[order, 0], phi0 + d[order, 1])
    weight = rng.uniform(0.5, 1.5, n_jets).astype(np.float32) if weights else np.ones(n_jets, np.float32)
    return JetArrays(constituents, label, weight, constituents.sum(1))


@pytest.fixture(scope="session")
def jets_small():
    return synthetic_jets(160, seed=0)


@pytest.fixture(scope="session")
def jet_files(tmp_path_factory, jets_small):
    """Two reference-layout files (top jets, then QCD jets) of the 160 synthetic jets."""
    d = tmp_path_factory.mktemp("jets")
    top = jets_small.label == SIGNAL
    parts = []
    for name, keep in (("top.h5", top), ("qcd.h5", jets_small.label == BACKGROUND)):
        sub = JetArrays(jets_small.constituents[keep], jets_small.label[keep], jets_small.weight[keep],
                        jets_small.jet[keep])
        parts.append(str(write_reference_h5(d / name, sub)))
    return tuple(parts)


def tiny_jets_config(paths, model="particlenet_lite", **model_keys):
    """A seconds-long jets run: a tiny model on 16 constituents of the synthetic jets."""
    from gnntrack.configs.jets import jets_config

    config = jets_config(model)
    config.data.jets.paths = tuple(paths)
    config.data.jets.n_constituents = 16
    config.model.max_constituents = 16
    if model.startswith("particlenet"):
        config.model.blocks, config.model.k, config.model.head = ((8, 8), (8,)), 4, (8,)
    config.model.update(model_keys)
    config.optimizer.lr, config.optimizer.warmup_steps = 1e-2, 1
    config.batching.graphs_per_step = 16
    config.batching.max_buckets = 1
    train = config.train
    train.steps, train.log_every, train.eval_every, train.checkpoint_every = 12, 4, 12, 12
    train.progress = False
    return config


@pytest.fixture(scope="session")
def teacher_run(tmp_path_factory, jet_files):
    """(result, run directory) of a tiny ParticleNet-Lite trained on the synthetic jet files."""
    from gnntrack.train.loop import train_and_evaluate

    run = tmp_path_factory.mktemp("teacher") / "run"
    config = tiny_jets_config(jet_files)
    config.data.cache_dir = str(run.parent / "cache")
    return train_and_evaluate(config, run), run
