"""Batch-size study: the runtime LR schedule equals optax's warmup schedule, the tiny study runs
end to end (results.csv, markdown, plots, fit file) and resumes without redoing finished points."""

import os

os.environ.setdefault("PJRT_NPROC", "8")  # enough CPU client threads for the forced devices' collectives

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gnntrack.config import load_config
from gnntrack.errors import ConfigError
from gnntrack.studies import batch_size as BS
from gnntrack.studies import fast_trainer as FT
from gnntrack.studies import runtime_schedule as RS
from gnntrack.studies import to_target as TT
from gnntrack.studies.provenance import read_results_csv
from gnntrack.train.optim import default_optimizer_config, make_optimizer

TINY = [
    "study.batch_sizes=(2, 4)", "study.optimizers=('adam',)", "study.lr_grid_points=1", "study.warmup_max=0", "study.repeat_seeds=(1,)",
    "study.toy.n_events=30", "data.n_train=16", "data.n_val=6", "study.max_steps=8", "study.min_steps=6",
    "study.max_examples=12", "study.curve_warmup=2", "study.tpe_startup_trials=1", "study.target_value=0.5",
    "model.hidden=8",
]


def tiny_config(*extra):
    return load_config("experiments/scaling/batch_size.py", TINY + list(extra))


@pytest.mark.parametrize("name", ["adam", "sgd", "lamb"])
def test_runtime_schedule_matches_optax_warmup(name):
    """Unit-LR optimizer x (lr, warmup in the state) == make_optimizer's warmup schedule."""
    cfg = default_optimizer_config()
    cfg.name, cfg.lr, cfg.schedule, cfg.warmup_steps, cfg.decay_rate = name, 0.05, "warmup_exponential", 3, 1.0
    ref_tx, _ = make_optimizer(cfg, 4)
    unit_tx, _ = make_optimizer(RS.unit_optimizer_config(cfg), 4)
    tx = optax.chain(unit_tx, RS.scale_by_runtime_schedule())
    lr, warmup, init = RS.runtime_schedule_values(cfg, 4)
    params = {"w": jnp.array([[1.0, -2.0], [0.5, 3.0]]), "b": jnp.array([0.1, -0.1])}
    p_ref, p_run = params, params
    s_ref = ref_tx.init(params)
    s_run = RS.set_runtime_schedule(tx.init(params), lr, warmup, init)
    for k in range(6):
        grads = jax.tree_util.tree_map(lambda x: jnp.sin(x * (k + 1)), p_ref)
        u, s_ref = ref_tx.update(grads, s_ref, p_ref)
        p_ref = optax.apply_updates(p_ref, u)
        grads = jax.tree_util.tree_map(lambda x: jnp.sin(x * (k + 1)), p_run)
        u, s_run = tx.update(grads, s_run, p_run)
        p_run = optax.apply_updates(p_run, u)
    for a, b in zip(jax.tree_util.tree_leaves(p_ref), jax.tree_util.tree_leaves(p_run)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_helpers():
    study = BS.default_batch_study_config()
    study.max_steps, study.min_steps, study.max_examples = 500, 50, 4000
    assert [BS.step_budget(study, b) for b in (1, 16, 128)] == [500, 250, 50]
    t = TT.Target("val_f1", 0.8, "max")
    assert t.reached(0.81) and not t.reached(float("nan")) and t.gap(0.4) == pytest.approx(0.5)
    assert TT.unreached_objective(100, t, 0.4, 0.5) > TT.unreached_objective(100, t, 0.6, 0.5) > 100
    with pytest.raises(ConfigError, match="study.trials"):
        BS.split_study_config(tiny_config("study.trials=0"))
    default = BS.default_batch_study_config()
    assert default.sampler == "grid" and BS.n_trials(default) == 2 * default.lr_grid_points
    space = BS.search_space(default, "adam")
    assert len(space[0]["grid"]) == default.lr_grid_points and space[1]["choices"] == [0, default.warmup_max]


def test_batch_size_study_end_to_end_and_resume(tmp_path):
    FT.clear_caches()
    config = tiny_config()
    out = BS.run_batch_size_study(config, tmp_path, progress=False)
    for name in ("results.csv", "results.md", "results.json", "fit.json", "steps_to_target.png",
                 "examples_to_target.png", "best_lr.png", "curves.png", "noise_scale.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    df, prov = read_results_csv(tmp_path / "results.csv")
    assert set(df.batch_size) == {2, 4} and len(df) == 2
    assert prov["commit"] and prov["versions"]["jax"] == jax.__version__ and prov["devices"]["n_devices"] >= 2
    assert prov["config"]["study"]["batch_sizes"] == [2, 4]
    for _, row in df.iterrows():
        assert row.edges_per_step > 0 and row.best_lr > 0
        if row.reached:  # examples and epochs follow from steps
            assert row.examples_to_target == row.steps_to_target * row.batch_size
            assert row.epochs_to_target == pytest.approx(row.examples_to_target / 16)
    md = (tmp_path / "results.md").read_text()
    assert "| adam | 2 |" in md and "Provenance" in md
    # B_simple logged during training (2 devices): the curve runs carry it in metrics.jsonl
    recs = [json.loads(x) for x in (tmp_path / "curves/adam/bs0004_warmup0/metrics.jsonl").read_text().splitlines()]
    train = [r for r in recs if "grad_norm_sq_local" in r]
    assert train and all(r["B_big"] > r["B_small"] > 0 for r in train)
    assert any(r["b_simple_edges"] is not None and math.isfinite(r["b_simple_edges"]) for r in train)
    assert len(TT.noise_scale_from_metrics(tmp_path / "curves/adam/bs0004_warmup0/metrics.jsonl")) == len(train)

    # resume: finished points are read back, not rerun; a removed point is redone alone
    point2 = tmp_path / "points/adam/bs0002/point.json"
    point4 = tmp_path / "points/adam/bs0004/point.json"
    finished = {f: f.stat().st_mtime_ns for f in point2.parent.rglob("*") if f.is_file()}
    point4.unlink()
    for run_dir in (tmp_path / "points/adam/bs0004").glob("seed*"):
        (run_dir / "result.json").unlink()
    again = BS.run_batch_size_study(config, tmp_path, progress=False)
    assert {f: f.stat().st_mtime_ns for f in finished} == finished  # point 2 and its runs untouched
    assert point4.exists()
    df2, _ = read_results_csv(tmp_path / "results.csv")
    assert list(df2.steps_to_target.fillna(-1)) == list(df.steps_to_target.fillna(-1))  # deterministic redo
    assert len(again["summary"]) == 2
