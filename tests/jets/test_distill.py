"""Distillation: the teacher's logits from its run directory, cached, and a student trained on them."""

import jax
import numpy as np
import pytest

from gnntrack.errors import InputError
from gnntrack.jets import distill
from gnntrack.jets.graphs import jet_graphs, jet_inputs, read_all
from gnntrack.train.loop import train_and_evaluate
from tests.jets.conftest import tiny_jets_config


def test_the_teachers_logits_are_its_models_outputs_and_are_computed_once(tmp_path, teacher_run, jet_files,
                                                                           monkeypatch):
    _, run = teacher_run
    jets, paths = read_all(jet_files)
    logits = distill.cached_teacher_logits(run, jets, paths, 0, tmp_path)
    assert logits.shape == (len(jets),) and logits.dtype == np.float32
    # the same model on one padded batch of its own graphs (other shapes: equal within rounding)
    model, params, keys, _ = distill.load_teacher(run)
    graphs = jet_graphs(jets, int(keys.n_constituents), keys.features)
    features, mask = jet_inputs(jets, int(keys.n_constituents), keys.features)
    graph = distill.batched_graph(features, mask, len(jets) + 1)
    direct = np.asarray(jax.jit(model.apply)({"params": params}, graph))[:len(jets), 0]
    np.testing.assert_allclose(logits, direct, rtol=1e-4, atol=1e-5)
    assert sum(g.n_nodes for g in graphs) == int(mask.sum())
    # a second student run reads the cache instead of running the teacher again
    monkeypatch.setattr(distill, "teacher_logits", lambda *a, **k: pytest.fail("recomputed"))
    np.testing.assert_array_equal(distill.cached_teacher_logits(run, jets, paths, 0, tmp_path), logits)


def test_a_student_trains_on_the_teachers_logits(tmp_path, teacher_run, jet_files):
    _, run = teacher_run
    config = tiny_jets_config(jet_files, model="jet_fc", hidden=(16,))
    config.data.jets.teacher_dir = str(run)
    config.data.jets.fraction = 0.5
    config.task.T, config.task["lambda"], config.task.lambda_decay = 2.0, 0.5, 0.99
    config.train.steps, config.train.eval_every, config.train.checkpoint_every = 4, 4, 0
    config.data.cache_dir = str(tmp_path / "cache")
    result = train_and_evaluate(config, tmp_path / "student")
    assert np.isfinite(result["val_loss"]) and result["steps"] == 4
    targets = np.load(tmp_path / "student" / "test_predictions.npz")["targets"]
    assert targets.shape == (32, 3)  # label, weight, teacher logit
    assert any(p.name.startswith("jets-teacher-") for p in (tmp_path / "cache").iterdir())


def test_a_teacher_dir_that_is_no_run_is_named(tmp_path, jet_files):
    jets, paths = read_all(jet_files)
    with pytest.raises(InputError, match=r"data\.jets\.teacher_dir.*not a run directory"):
        distill.cached_teacher_logits(tmp_path, jets, paths, 0, tmp_path)
