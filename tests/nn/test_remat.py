"""model.remat="iteration": each message-passing iteration recomputed in the backward pass.

Same parameter tree (checkpoints load across remat settings), same logits and gradients as no
remat (float tolerance), a much smaller compiled train step, and clear errors for bad values."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gnntrack import cli
from gnntrack.bench import compiled_flops, make_train_step, random_graph, train_step_memory
from gnntrack.config import apply_overrides, load_config, save_config
from gnntrack.errors import ConfigError
from gnntrack.nn.models import (FastSegmentClassifier, build_model, default_model_config,
                                remat_mode)
from tests.nn.model_helpers import perturbed_params, tanh_loss
from gnntrack.train.defaults import default_config


@pytest.mark.parametrize("options", [
    dict(chunk_size=64),           # chunked MLPs (nested remat), padded remainder
    dict(fused_norm=False, project=False),  # the reference arithmetic
    dict(message="weighted_sum_in"),  # generic (non-projected) message path
    dict(use_edge_features=True),
])
def test_iteration_remat_matches_no_remat(options):
    graph, _ = random_graph(60, 250, n_edge_features=2 if options.get("use_edge_features") else 0,
                            seed=3)
    plain = FastSegmentClassifier(hidden=8, n_iters=3, **options)
    remat = FastSegmentClassifier(hidden=8, n_iters=3, remat="iteration", **options)
    params = perturbed_params(plain, graph)
    np.testing.assert_allclose(jax.jit(remat.apply)({"params": params}, graph),
                               jax.jit(plain.apply)({"params": params}, graph),
                               rtol=1e-5, atol=1e-5)
    g_plain = jax.jit(jax.grad(tanh_loss(plain, graph)))(params)
    g_remat = jax.jit(jax.grad(tanh_loss(remat, graph)))(params)
    assert jax.tree_util.tree_structure(g_remat) == jax.tree_util.tree_structure(g_plain)
    for a, b in zip(jax.tree_util.tree_leaves(g_remat), jax.tree_util.tree_leaves(g_plain)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * float(jnp.abs(b).max()) + 1e-6)


def test_parameter_tree_is_the_same_for_every_remat_setting():
    graph, _ = random_graph(40, 120, seed=1)
    trees = {}
    for remat in (False, True, "none", "mlp", "iteration"):
        model = FastSegmentClassifier(hidden=8, n_iters=2, remat=remat)
        trees[remat] = jax.jit(model.init)(jax.random.key(7), graph)["params"]
    ref = trees[False]
    for remat, params in trees.items():
        assert jax.tree_util.tree_structure(params) == jax.tree_util.tree_structure(ref), remat
        for a, b in zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(ref)):
            assert a.shape == b.shape and a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)  # same key and shapes, remat touches no initialiser


def test_zero_iterations_and_bfloat16():
    graph, _ = random_graph(40, 120, seed=2)
    for kwargs in (dict(n_iters=0), dict(n_iters=2, compute_dtype="bfloat16")):
        plain = FastSegmentClassifier(hidden=8, **kwargs)
        remat = FastSegmentClassifier(hidden=8, remat="iteration", **kwargs)
        params = plain.init(jax.random.key(0), graph)["params"]
        np.testing.assert_allclose(jax.jit(remat.apply)({"params": params}, graph),
                                   jax.jit(plain.apply)({"params": params}, graph),
                                   rtol=1e-5, atol=1e-5)


def test_iteration_remat_shrinks_the_compiled_train_step():
    sizes = {}
    for remat in (False, "iteration"):
        model = FastSegmentClassifier(hidden=16, n_iters=6, remat=remat)
        sizes[remat] = train_step_memory(model, 2_000, 8_000)
        assert sizes[remat]["peak_bytes"] >= sizes[remat]["temp_bytes"] > 0
    assert sizes["iteration"]["temp_bytes"] < 0.6 * sizes[False]["temp_bytes"]


def test_config_values_and_errors():
    assert default_model_config("segment_classifier").remat is False  # default unchanged
    for value, mode in ((False, "none"), (None, "none"), (True, "mlp"), ("none", "none"),
                        ("mlp", "mlp"), ("iteration", "iteration")):
        assert remat_mode(value) == mode
        assert build_model({"name": "segment_classifier", "remat": value}).remat == value
    for bad in ("layer", "Iteration", 1, 2.0, ["iteration"]):
        with pytest.raises(ConfigError, match="model.remat"):
            build_model({"name": "segment_classifier", "remat": bad})
    with pytest.raises(ConfigError, match="model.remat"):
        FastSegmentClassifier(hidden=4, n_iters=1, remat="layers").init(
            jax.random.key(0), random_graph(10, 20)[0])
    # Overrides on the full experiment config: a string over the boolean default, and back.
    config = default_config()
    apply_overrides(config, ["--config.model.remat=iteration"])
    assert config.model.remat == "iteration"
    assert build_model(config.model).remat == "iteration"
    apply_overrides(config, ["--config.model.remat=True"])
    assert config.model.remat is True
    config.model.update({"remat": "none"})
    assert build_model(config.model).remat == "none"


def test_saved_run_config_accepts_a_remat_override(tmp_path):
    config = default_config()
    save_config(config, tmp_path)  # model.remat saved as JSON false
    loaded = load_config(tmp_path, ["--config.model.remat=iteration"])
    assert loaded.model.remat == "iteration"
    assert load_config(tmp_path).model.remat is False
    with pytest.raises(ConfigError, match="model.hidden"):  # other keys stay type-checked
        load_config(tmp_path, ["--config.model.hidden=wide"])


def test_bench_cli_remat_iteration_counts_the_unrolled_flops(capsys):
    assert cli.main(["bench", "--hidden", "8", "--n-iters", "2", "--nodes", "30", "--edges", "90",
                     "--steps", "1", "--warmup", "0", "--remat", "iteration", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["model_config"]["remat"] == "iteration"
    # XLA counts a scan body once: FLOPs must come from the unrolled, unchunked model.
    plain = FastSegmentClassifier(hidden=8, n_iters=2, chunk_size=0)
    graph, y = random_graph(30, 90)
    params = plain.init(jax.random.key(0), graph)["params"]
    tx = optax.adam(1e-3)
    flops = compiled_flops(make_train_step(plain, tx, donate=False), params, tx.init(params),
                           graph, y, np.ones_like(y))
    assert result["xla_flops_per_train_step"] == pytest.approx(flops, rel=1e-6)
    assert cli.main(["bench", "--nodes", "30", "--edges", "90", "--remat", "layers"]) == 2
    assert "model.remat" in capsys.readouterr().err
