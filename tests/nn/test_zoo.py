"""Example models from the parametrised layers: the registered EdgeConv edge classifier and a
ParticleNet-like graph classifier, padding-safe and graph-isolated, with finite gradients."""

import jax
import jax.numpy as jnp
import jraph
import pytest

from gnntrack.errors import ConfigError
from gnntrack.nn import build_model, default_model_config
from gnntrack.nn.zoo import ParticleNet
from tests.nn.layers.layer_helpers import (assert_finite_gradients, assert_graphs_isolated,
                                           assert_padding_safe, batch_of, padded)


def edgeconv_model():
    config = default_model_config("edgeconv")
    config.update(dict(hidden=8, k=3))
    return build_model(config)


MODELS = {"edgeconv": (edgeconv_model, "edge"),
          "particlenet": (lambda: ParticleNet(blocks=((8, 8), (6,)), k=3, head=(8,)), "graph")}


@pytest.fixture(scope="module", params=list(MODELS))
def setup(request):
    make, level = MODELS[request.param]
    model = make()
    graphs = batch_of()
    graph = jraph.batch_np(graphs)
    params = jax.jit(model.init)(jax.random.key(0), graph)["params"]
    return model, params, graphs, graph, level


def test_outputs_per_level(setup):
    model, params, _, graph, level = setup
    out = jax.jit(model.apply)({"params": params}, graph)
    want = {"edge": (len(graph.senders),), "graph": (len(graph.n_node), 1)}[level]
    assert out.shape == want and out.dtype == jnp.float32


def test_padding_safe_and_graphs_isolated(setup):
    model, params, graphs, graph, level = setup
    fn = jax.jit(lambda g: model.apply({"params": params}, g))
    assert_padding_safe(fn, graph, level)
    assert_graphs_isolated(fn, graphs)


def test_gradients_finite_on_a_padded_batch(setup):
    model, params, _, graph, _ = setup
    pad = padded(graph)
    assert_finite_gradients(lambda p: jnp.sum(jnp.tanh(model.apply({"params": p}, pad))), params)


def test_edgeconv_config_is_checked():
    config = default_model_config("edgeconv")
    config.k = 0
    with pytest.raises(ConfigError, match="'model.k' must be a positive integer"):
        build_model(config)
