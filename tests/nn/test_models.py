"""Models: parameter counts, padding invariance, jit vs no-jit, edge-permutation equivariance."""

import jax
import jax.numpy as jnp
import jraph
import numpy as np
import pytest

from gnntrack.bench import random_graph
from gnntrack.errors import ConfigError
from gnntrack.nn import build_model, count_params, default_model_config
from tests.nn.model_helpers import assert_close_across_shapes

SMALL = {
    "segment_classifier": dict(hidden=16, n_iters=3),
    "interaction_network": dict(hidden=16, n_iters=2),
}


def small_model(name, **overrides):
    config = default_model_config(name)
    config.update({**SMALL[name], **overrides})
    return build_model(config)


def graph_for(name, n_nodes=30, n_edges=90, seed=0):
    return random_graph(n_nodes, n_edges, 3, 4 if name == "interaction_network" else 0, seed)[0]


def test_default_parameter_counts_match_published_models():
    # HEP.TrkX sparse segment classifier, hidden 64, 3 inputs: 384 + 17,409 + 25,920.
    g = graph_for("segment_classifier")
    model = build_model(default_model_config("segment_classifier"))
    assert count_params(jax.eval_shape(model.init, jax.random.key(0), g)["params"]) == 43_713
    # DeZoort et al. 2021: 6,448 parameters with 3 node and 4 edge features, hidden 40.
    g = graph_for("interaction_network")
    model = build_model(default_model_config("interaction_network"))
    assert count_params(jax.eval_shape(model.init, jax.random.key(0), g)["params"]) == 6_448


@pytest.mark.parametrize("name", ["segment_classifier", "interaction_network"])
def test_padding_never_changes_real_edge_logits(name):
    model = small_model(name)
    graph = graph_for(name)
    params = model.init(jax.random.key(1), graph)["params"]
    logits = model.apply({"params": params}, graph)
    for n_node, n_edge in [(31, 90), (64, 256)]:
        padded = jraph.pad_with_graphs(graph, n_node=n_node, n_edge=n_edge, n_graph=3)
        padded_logits = model.apply({"params": params}, padded)
        assert padded_logits.shape == (n_edge,) and padded_logits.dtype == jnp.float32
        assert_close_across_shapes(padded_logits[:90], logits)


@pytest.mark.parametrize("name", ["segment_classifier", "interaction_network"])
def test_jit_matches_eager(name):
    model = small_model(name)
    graph = graph_for(name)
    params = model.init(jax.random.key(2), graph)["params"]
    eager = model.apply({"params": params}, graph)
    jitted = jax.jit(model.apply)({"params": params}, graph)
    np.testing.assert_allclose(jitted, eager, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["segment_classifier", "interaction_network"])
def test_edge_permutation_equivariance(name):
    model = small_model(name)
    graph = graph_for(name)
    params = model.init(jax.random.key(3), graph)["params"]
    perm = np.random.default_rng(0).permutation(90)
    permuted = graph._replace(senders=graph.senders[perm], receivers=graph.receivers[perm],
                              edges=None if graph.edges is None else graph.edges[perm])
    np.testing.assert_allclose(model.apply({"params": params}, permuted),
                               model.apply({"params": params}, graph)[perm], rtol=1e-5, atol=1e-6)


def test_remat_gives_same_logits_and_gradients():
    graph = graph_for("segment_classifier")
    plain, remat = small_model("segment_classifier"), small_model("segment_classifier", remat=True)
    params = plain.init(jax.random.key(4), graph)["params"]
    loss = lambda m: (lambda p: jnp.sum(jnp.tanh(m.apply({"params": p}, graph))))  # noqa: E731
    g1 = jax.grad(loss(plain))(params)
    g2 = jax.grad(loss(remat))(params)
    for a, b in zip(jax.tree_util.tree_leaves(g1), jax.tree_util.tree_leaves(g2)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-5)


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="available: segment_classifier, interaction_network"):
        default_model_config("gcn")
    config = default_model_config("segment_classifier").to_dict()
    config["hiden"] = 3
    with pytest.raises(ConfigError, match="model.hiden"):
        build_model(config)
    with pytest.raises(ConfigError, match="model.activation"):
        build_model({"name": "segment_classifier", "activation": "softsign"})
    with pytest.raises(ConfigError, match="model.n_iters"):
        build_model({"name": "interaction_network", "n_iters": -1})


def test_impl_chooses_the_reference_or_the_fast_form_with_one_parameter_tree():
    """model.impl picks the module at build time; the forms agree with the config's defaults and
    share one parameter tree (checkpoints move between them); the fast-only knobs are refused
    on the reference form instead of being ignored."""
    from gnntrack.nn.models import FastSegmentClassifier, SegmentClassifier

    config = default_model_config("segment_classifier")
    fast = build_model(config)
    assert type(fast) is FastSegmentClassifier and config.impl == "fast"
    reference = build_model({**config.to_dict(), "impl": "reference"})
    assert type(reference) is SegmentClassifier
    for key in ("hidden", "n_iters", "message", "activation", "layer_norm", "edge_layers",
                "node_layers", "use_edge_features", "compute_dtype"):
        assert getattr(SegmentClassifier(), key) == config[key], key
    assert FastSegmentClassifier().remat == config.remat
    assert FastSegmentClassifier().cpu_kernels == config.cpu_kernels
    graph = graph_for("segment_classifier")
    shapes = [jax.eval_shape(m.init, jax.random.key(0), graph)["params"] for m in (fast, reference)]
    assert (jax.tree_util.tree_map(lambda a: a.shape, shapes[0])
            == jax.tree_util.tree_map(lambda a: a.shape, shapes[1]))
    for bad in (dict(remat="iteration"), dict(cpu_kernels="fused")):
        with pytest.raises(ConfigError, match="model.impl='fast'"):
            build_model({"name": "segment_classifier", "impl": "reference", **bad})
    with pytest.raises(ConfigError, match="model.impl 'slow'"):
        build_model({"name": "segment_classifier", "impl": "slow"})
