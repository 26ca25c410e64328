"""The fast form (model.impl="fast") computes the reference segment classifier: same parameters
-> same logits and gradients (float tolerance), including padding, chunk remainders and custom messages."""

import jax
import jax.numpy as jnp
import jraph
import numpy as np
import pytest

from gnntrack.bench import random_graph
from gnntrack.nn.layers import gather_rows, norm_act
from gnntrack.nn.fast import EDGE_CHUNK, default_chunk_size
from gnntrack.nn.models import (FastSegmentClassifier, SegmentClassifier, build_model,
                                default_model_config)
from tests.nn.model_helpers import assert_close_across_shapes, perturbed_params, tanh_loss


@pytest.mark.parametrize("variant", [
    dict(chunk_size=64),        # all levers; several chunks plus a padded remainder
    dict(remat=True, chunk_size=100),
    dict(remat="iteration", chunk_size=64),  # scanned, rematerialised iterations
    dict(project=False, chunk_size=0),
    dict(fused_norm=False),
    dict(message="weighted_sum_in"),  # non-projectable message: generic path
])
def test_fast_matches_reference_logits_and_gradients(variant):
    graph, _ = random_graph(60, 250, seed=2)
    message = variant.get("message", "bidirectional_weighted_sum")
    reference = SegmentClassifier(hidden=8, n_iters=2, message=message)
    fast = FastSegmentClassifier(hidden=8, n_iters=2, **variant)
    params = perturbed_params(reference, graph)
    assert (jax.tree_util.tree_structure(jax.eval_shape(fast.init, jax.random.key(0), graph)["params"])
            == jax.tree_util.tree_structure(params))
    np.testing.assert_allclose(jax.jit(fast.apply)({"params": params}, graph),
                               jax.jit(reference.apply)({"params": params}, graph),
                               rtol=1e-5, atol=1e-5)
    g_ref = jax.jit(jax.grad(tanh_loss(reference, graph)))(params)
    g_fast = jax.jit(jax.grad(tanh_loss(fast, graph)))(params)
    for a, b in zip(jax.tree_util.tree_leaves(g_fast), jax.tree_util.tree_leaves(g_ref)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * float(jnp.abs(b).max()) + 1e-6)


def test_fast_is_padding_invariant_and_jit_consistent():
    config = default_model_config("segment_classifier")
    config.update(hidden=16, n_iters=2, impl="fast")
    model = build_model(config)
    graph, _ = random_graph(40, 150, seed=4)
    params = model.init(jax.random.key(0), graph)["params"]
    logits = model.apply({"params": params}, graph)  # eager
    padded = jraph.pad_with_graphs(graph, n_node=48, n_edge=3000, n_graph=2)
    assert_close_across_shapes(jax.jit(model.apply)({"params": params}, padded)[:150], logits)


def test_bfloat16_compute_keeps_float32_params_and_stays_close():
    graph, _ = random_graph(40, 150, seed=5)
    ref = SegmentClassifier(hidden=16, n_iters=2)
    bf16 = FastSegmentClassifier(hidden=16, n_iters=2, compute_dtype="bfloat16")
    params = jax.jit(bf16.init)(jax.random.key(0), graph)["params"]
    assert all(p.dtype == jnp.float32 for p in jax.tree_util.tree_leaves(params))
    out = jax.jit(bf16.apply)({"params": params}, graph)
    assert out.dtype == jnp.float32
    np.testing.assert_allclose(out, jax.jit(ref.apply)({"params": params}, graph), atol=0.1)


def test_norm_act_gradient_matches_autodiff():
    rng = np.random.default_rng(0)
    h = jnp.asarray(rng.normal(size=(7, 5)), jnp.float32)
    scale = jnp.asarray(rng.normal(size=5), jnp.float32)
    bias = jnp.asarray(rng.normal(size=5), jnp.float32)

    def plain(h, scale, bias, act):
        mean = h.mean(-1, keepdims=True)
        xhat = (h - mean) * jax.lax.rsqrt(((h - mean) ** 2).mean(-1, keepdims=True) + 1e-6)
        return {"tanh": jnp.tanh, "relu": jax.nn.relu, "identity": lambda z: z}[act](xhat * scale + bias)

    for act in ("tanh", "relu", "identity"):
        f = lambda *a: jnp.sum(jnp.sin(norm_act(*a, act)))  # noqa: E731
        g = lambda *a: jnp.sum(jnp.sin(plain(*a, act)))  # noqa: E731
        for a, b in zip(jax.grad(f, (0, 1, 2))(h, scale, bias), jax.grad(g, (0, 1, 2))(h, scale, bias)):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_fast_matches_reference_under_shard_map():
    """Replicated params, one graph per device: same loss and gradients as the reference model
    (the custom LayerNorm backward must respect shard_map's device-varying types)."""
    from jax.sharding import Mesh, PartitionSpec as P

    devices = np.array(jax.devices()[:4])
    graphs = [random_graph(30, 100, seed=10 + i)[0] for i in range(len(devices))]
    stacked = jax.tree_util.tree_map(lambda *a: np.stack(a), *graphs)
    mesh = Mesh(devices, ("d",))
    results = []
    for impl, remat in (("reference", False), ("fast", False), ("fast", "iteration")):
        model = (SegmentClassifier(hidden=8, n_iters=2) if impl == "reference" else
                 FastSegmentClassifier(hidden=8, n_iters=2, chunk_size=32, remat=remat))

        def per_device(params, graph, model=model):
            graph = jax.tree_util.tree_map(lambda a: a[0], graph)
            loss, grads = jax.value_and_grad(
                lambda p: jnp.mean(model.apply({"params": p}, graph) ** 2))(params)
            return jax.lax.pmean(loss, "d"), jax.lax.pmean(grads, "d")

        if impl == "reference":
            params = perturbed_params(model, graphs[0])
        step = jax.jit(jax.shard_map(per_device, mesh=mesh, in_specs=(P(), P("d")),
                                     out_specs=(P(), P())))
        results.append(step(params, stacked))
    (loss_ref, g_ref), *others = results
    for loss_fast, g_fast in others:
        np.testing.assert_allclose(loss_fast, loss_ref, rtol=1e-5)
        for a, b in zip(jax.tree_util.tree_leaves(g_fast), jax.tree_util.tree_leaves(g_ref)):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * float(jnp.abs(b).max()) + 1e-6)


def test_gather_rows_is_plain_indexing_with_the_same_gradient():
    table = jax.random.normal(jax.random.key(0), (7, 3))
    index = jnp.array([6, 0, 0, 3, 6], jnp.int32)  # repeats: gradients must accumulate
    np.testing.assert_array_equal(gather_rows(table, index), table[index])  # copies rows: exact
    weights = jnp.arange(15.0).reshape(5, 3)
    np.testing.assert_allclose(jax.grad(lambda t: jnp.sum(weights * gather_rows(t, index)))(table),
                               jax.grad(lambda t: jnp.sum(weights * t[index]))(table))


def test_row_blocks_are_a_cpu_default_only():
    """The cache-sized row blocks are the CPU default; other backends run unchunked."""
    assert default_chunk_size("cpu") == EDGE_CHUNK
    assert default_chunk_size("gpu") == 0 and default_chunk_size("tpu") == 0
    assert default_chunk_size() == (EDGE_CHUNK if jax.default_backend() == "cpu" else 0)
