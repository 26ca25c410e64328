"""The 'mlpf' model: per-element outputs in the pflow task's layout for each message form, padding
never changes a real element's outputs, one LSH bin per event is the dense model, bf16 computes
with float32 parameters, and config mistakes name their key."""

import jax
import jax.numpy as jnp
import jraph
import numpy as np
import pytest

from gnntrack.errors import ConfigError
from gnntrack.nn import build_model, default_model_config
from gnntrack.testing import pflow_events
from tests.nn.layers.layer_helpers import padded
from tests.nn.model_helpers import assert_close_across_shapes

GRAPH = jraph.batch_np([e.graph for e in pflow_events(2, seed=0, min_particles=6, max_particles=12)])
VARIANTS = {"lsh": dict(bin_size=8, n_buckets=4), "lsh_learned": dict(bin_size=8, n_buckets=4, hash_space="learned"),
            "dense": dict(dense=True),
            "kernel_attention": dict(message="kernel_attention", n_random_features=8)}


def model_of(**keys):
    cfg = default_model_config("mlpf")
    cfg.hidden, cfg.distance_dim, cfg.n_layers, cfg.n_convs, cfg.attention_heads = 8, 4, 1, 1, 2
    cfg.update(keys)
    return build_model(cfg)


@pytest.mark.parametrize("variant", ["lsh", "lsh_learned", "kernel_attention"])  # dense: the next test
def test_outputs_per_element_and_padding_changes_no_real_output(variant):
    model = model_of(**VARIANTS[variant])
    params = jax.jit(model.init)(jax.random.key(0), GRAPH)
    fn = jax.jit(model.apply)
    out = fn(params, GRAPH)
    assert out.shape == (GRAPH.nodes.shape[0], 6 + 3 + 5) and out.dtype == jnp.float32
    n = GRAPH.nodes.shape[0]
    assert_close_across_shapes(fn(params, padded(GRAPH, 37, 0, 2))[:n], out)


def test_one_lsh_bin_per_event_is_the_dense_model():
    # every event fits one bin: the same pairs and kernel, other summation order -> float32 rounding
    lsh, dense = model_of(bin_size=256), model_of(dense=True)
    params = jax.jit(lsh.init)(jax.random.key(0), GRAPH)
    assert_close_across_shapes(jax.jit(lsh.apply)(params, GRAPH), jax.jit(dense.apply)(params, GRAPH))


def test_bf16_computes_with_float32_parameters_and_gradients():
    bf16 = model_of(dtype="bfloat16", **VARIANTS["lsh"])
    params = jax.jit(bf16.init)(jax.random.key(0), GRAPH)
    assert all(p.dtype == jnp.float32 for p in jax.tree_util.tree_leaves(params))

    def loss(p):
        out = bf16.apply(p, GRAPH)
        return jnp.sum(jnp.tanh(out)), out

    grads, out = jax.jit(jax.grad(loss, has_aux=True))(params)
    assert out.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(out)))
    assert all(g.dtype == jnp.float32 and bool(jnp.all(jnp.isfinite(g))) for g in jax.tree_util.tree_leaves(grads))


@pytest.mark.parametrize("key, value, match", [
    ("message", "lsh2", r"'model.message'.*lsh, kernel_attention"),
    ("level", "graph", r"'model.level' must be 'node'"),
    ("hash_space", "xyz", r"'model.hash_space' must be one of eta_phi, learned"),
    ("n_buckets", 5, r"'model.n_buckets' must be even"),
    ("head_widths", (6, 3, 4), r"'model.head_widths'.*= 14"),
    ("dtype", "float16", r"unknown compute dtype 'float16'"),
])
def test_config_errors_name_the_key(key, value, match):
    with pytest.raises(ConfigError, match=match):
        model_of(**{key: value})
