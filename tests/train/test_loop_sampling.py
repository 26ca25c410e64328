"""Particle sampling in the training loop (data.particle_fraction): every epoch trains on a new
draw of the training graphs, 'auto' class weights and the bucket ladder follow the samples,
validation and test see whole graphs, and a killed run resumes bitwise.

What is bitwise and why: the resumed and the uninterrupted run are the same program on the same
shapes on this machine, and each epoch's sample is a pure function of (seed, epoch), so the
parameters and optimizer state agree exactly.
"""

from pathlib import Path

import jax
import numpy as np
import pytest

import gnntrack.train.loop as loop
from gnntrack.config import load_config
from gnntrack.errors import ConfigError
from gnntrack.graphs.sampling import particle_sample_epoch
from gnntrack.train.checkpoint import Checkpointer
from gnntrack.train.data import prepare_data
from gnntrack.train.losses import balanced_weights
from gnntrack.train.loop import train_and_evaluate

SMOKE = Path(__file__).resolve().parents[2] / "experiments" / "smoke.py"
FRACTION = 0.5

pytestmark = pytest.mark.usefixtures("compilation_cache")  # tests/train/conftest.py


def _config(cache_dir, fraction=FRACTION):
    return load_config(SMOKE, [f"data.cache_dir={cache_dir}", f"data.particle_fraction={fraction}",
                               "loss.weighting=auto", "train.eval_every=0", "train.checkpoint_every=2",
                               "train.keep_checkpoints=5", "train.tensorboard=False"])


class _Draws:
    """Records the epochs particle_sample_epoch is asked for (the loop's own samples)."""

    def __init__(self):
        self.epochs = []

    def __call__(self, graphs, fraction, seed, epoch):
        self.epochs.append(epoch)
        return particle_sample_epoch(graphs, fraction, seed, epoch)


@pytest.fixture(scope="module")
def full(tmp_path_factory, compilation_cache):
    """An uninterrupted 6-step (3-epoch) sampled run: (run dir, data cache, result, epochs drawn)."""
    root = tmp_path_factory.mktemp("sampling")
    draws = _Draws()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(loop, "particle_sample_epoch", draws)
        result = train_and_evaluate(_config(root / "cache"), root / "full")
    assert result["steps"] == 6 and not result["interrupted"]
    return root / "full", root / "cache", result, draws.epochs


def _state(workdir, step=6):
    with Checkpointer(Path(workdir) / "checkpoints", keep=5) as ck:
        return ck.restore(step)


def test_each_epoch_trains_on_a_new_sample_and_tests_on_whole_graphs(full):
    run_dir, cache, result, epochs = full
    assert {1, 2} <= set(epochs)  # epochs 1 and 2 drew their own samples (epoch 0: weights, ladder)
    splits = prepare_data(_config(cache), run_dir, progress=False)
    sample = particle_sample_epoch(splits.train, FRACTION, 0, 0)
    n_true = sum(int(g.y.sum()) for g in sample)
    n_edges = sum(g.n_edges for g in sample)
    assert n_edges < sum(g.n_edges for g in splits.train)
    # 'auto' weights from the first epoch's samples, not the whole graphs
    np.testing.assert_allclose(result["loss_weights"], balanced_weights(n_true, n_edges - n_true), rtol=1e-6)
    # the test metrics count every edge of the whole test graphs
    assert result["n_test_edges"] == sum(g.n_edges for g in splits.test)


def test_ladder_is_fitted_to_the_samples(full):
    run_dir, cache, _, _ = full
    _, meta = _state(run_dir)
    splits = prepare_data(_config(cache), run_dir, progress=False)
    whole = sorted(g.n_edges for g in splits.train)[-2:]  # a step's 2 graphs, on one device
    top = max(e for _, e in meta["ladder"]["buckets"])
    assert top < sum(whole)


def test_sampled_run_resumes_bitwise(full, tmp_path):
    run_dir, cache, _, _ = full
    part = train_and_evaluate(_config(cache), tmp_path / "resumed", stop_after_steps=3)
    assert part["interrupted"]
    resumed = train_and_evaluate(_config(cache), tmp_path / "resumed")
    assert resumed["resumed_from"] == 2 and resumed["steps"] == 6
    (a, meta_a), (b, meta_b) = _state(run_dir), _state(tmp_path / "resumed")
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert meta_a["ladder"] == meta_b["ladder"]


@pytest.mark.parametrize("fraction", [-0.1, 1.5])
def test_fraction_outside_0_1_is_a_config_error(tmp_path, fraction):
    with pytest.raises(ConfigError, match="data.particle_fraction"):
        train_and_evaluate(_config(tmp_path / "cache", fraction), tmp_path / "run")
