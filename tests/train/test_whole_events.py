"""Whole-event updates from exact sections (batching.whole_events, batching.loss_normaliser =
'update', optimizer.accumulation_steps = sections per event): training on an event's sections,
one section per step, gives the updates that training on the whole event gives.

Nothing here is bitwise: a section sums a node's messages in another order than the whole graph,
and the update sums its gradient over sections, so the two runs agree to float32 rounding (SGD,
whose update is proportional to the gradient, keeps that agreement visible; a per-section update
differs by orders of magnitude more).
"""

from pathlib import Path

import jax
import numpy as np
import pytest

from gnntrack.configs.luxe import luxe_config
from gnntrack.errors import ConfigError
from gnntrack.graphs.batching import epoch_order, epoch_steps, update_denominators
from gnntrack.train.checkpoint import Checkpointer
from gnntrack.train.loop import train_and_evaluate

pytestmark = pytest.mark.usefixtures("compilation_cache")  # tests/train/conftest.py

SECTIONS, ITERS, EPOCHS = 4, 2, 2


def test_grouped_order_shuffles_events_as_the_one_graph_per_event_order():
    events = np.array([10, 11, 12, 13, 14])
    sections = np.repeat(events, 3)                     # 3 sections per event, dataset order
    for epoch in range(3):
        per_event = events[epoch_order(len(events), 7, epoch)]
        grouped = epoch_order(len(sections), 7, epoch, groups=sections)
        assert np.array_equal(sections[grouped], np.repeat(per_event, 3))
        assert np.array_equal(grouped.reshape(-1, 3) % 3, np.tile([0, 1, 2], (5, 1)))  # section order kept
    assert np.array_equal(epoch_order(6, 0, 0, shuffle=False, groups=np.repeat([2, 1], 3)),
                          [3, 4, 5, 0, 1, 2])           # unshuffled: groups in id order


def test_update_denominators_are_the_update_mean_count():
    counts = np.array([4.0, 0.0, 6.0, 10.0])
    steps = [np.array([0]), np.array([1]), np.array([2]), np.array([3])]
    np.testing.assert_allclose(update_denominators(counts, steps, 2), [2.0, 2.0, 8.0, 8.0])
    with pytest.raises(ConfigError, match="accumulation_steps=3"):
        update_denominators(counts, steps, 3)
    groups = np.repeat([5, 6], 2)
    assert [s.tolist() for s in epoch_steps(np.zeros(4), 2, 0, 0, shuffle=False, groups=groups)] == [[0, 1], [2, 3]]


def _run(crossings, root: Path, variant: str, accumulation_steps: int = SECTIONS, *, per_step: int = 1,
         n_devices: int = 1, mode: str = "shard_map", name: str = ""):
    config = luxe_config(variant)
    config.data.input_dir = str(crossings)
    config.data.cache_dir = str(root / "cache")
    config.data.n_train, config.data.n_val, config.data.n_test = 2, 1, 0
    config.graph.exact_sections = SECTIONS if variant != "full" else 0
    config.graph.section_hops = ITERS
    config.model.hidden, config.model.n_iters = 8, ITERS
    config.optimizer.name, config.optimizer.lr, config.optimizer.momentum = "sgd", 0.5, 0.0
    if variant == "sections":
        config.optimizer.accumulation_steps = accumulation_steps
    config.loss.weighting = "manual"  # unit class weights in every run
    config.train.epochs = EPOCHS
    config.train.checkpoint_every = 10_000
    config.train.progress = config.train.tensorboard = False
    config.batching.graphs_per_step = per_step
    config.parallel.n_devices, config.parallel.mode = n_devices, mode
    workdir = root / (name or variant)
    result = train_and_evaluate(config, workdir)
    with Checkpointer(workdir / "checkpoints", keep=1) as ck:
        state, _ = ck.restore(result["steps"])
    params = state["params"] if isinstance(state, dict) else state.params
    return result, [np.asarray(a) for a in jax.tree_util.tree_leaves(params)]


def test_section_updates_equal_whole_event_updates(luxe_crossings, tmp_path):
    full, p_full = _run(luxe_crossings, tmp_path, "full")
    sections, p_sections = _run(luxe_crossings, tmp_path, "sections")
    _, p_steps = _run(luxe_crossings, tmp_path, "section_steps")
    assert full["steps"] == 2 * EPOCHS and sections["steps"] == 2 * EPOCHS * SECTIONS
    moved = max(float(np.max(np.abs(a))) for a in p_full)
    worst = max(float(np.max(np.abs(a - b))) for a, b in zip(p_full, p_sections))
    worst_steps = max(float(np.max(np.abs(a - b))) for a, b in zip(p_full, p_steps))
    assert worst <= 1e-5 * max(moved, 1.0)
    assert worst_steps > 100 * max(worst, 1e-7)   # per-section updates are a different run
    np.testing.assert_allclose(sections["val_f1"], full["val_f1"], atol=1e-4)


def test_update_normaliser_needs_whole_updates_per_epoch(luxe_crossings, tmp_path):
    # 2 events x 4 sections = 8 steps per epoch: no whole number of 3-step updates
    with pytest.raises(ConfigError, match="accumulation_steps=3"):
        _run(luxe_crossings, tmp_path, "sections", accumulation_steps=3)


@pytest.mark.parametrize("mode", ["shard_map", "pmap"])
def test_whole_event_updates_on_two_devices(luxe_crossings, tmp_path, mode):
    """Two sections per step, one per device, two steps per update: still the whole event's update
    (the update's loss denominator is the same on both devices)."""
    _, p_full = _run(luxe_crossings, tmp_path, "full")
    result, p_two = _run(luxe_crossings, tmp_path, "sections", accumulation_steps=SECTIONS // 2, per_step=2,
                         n_devices=2, mode=mode, name=f"two_{mode}")
    assert result["n_devices"] == 2 and result["steps"] == 2 * EPOCHS * SECTIONS // 2
    moved = max(float(np.max(np.abs(a))) for a in p_full)
    assert max(float(np.max(np.abs(a - b))) for a, b in zip(p_full, p_two)) <= 1e-5 * max(moved, 1.0)
