"""ParticleNet and ParticleNet-Lite on dense jets: the paper's sizes, the EdgeConv function,
padding and other jets never reaching a jet's output."""

import jax
import jax.numpy as jnp
import jraph
import numpy as np
import pytest

from gnntrack.errors import ConfigError
from gnntrack.nn import build_model, default_model_config
from gnntrack.nn.particlenet import DenseEdgeConv
from gnntrack.train.state import param_count


def jet_batch(sizes, f=7, pad_nodes=5, seed=0, n_graph_pad=None):
    """A padded jraph batch of jets with `sizes` constituents (jraph layout: real graphs, one
    padding graph holding `pad_nodes` nodes, then empty graphs up to n_graph_pad)."""
    rng = np.random.default_rng(seed)
    nodes = rng.normal(size=(sum(sizes) + pad_nodes, f)).astype(np.float32)
    n_graph_pad = n_graph_pad or len(sizes) + 1
    n_node = np.zeros(n_graph_pad, np.int32)
    n_node[:len(sizes)] = sizes
    n_node[len(sizes)] = pad_nodes
    return jraph.GraphsTuple(nodes=nodes, edges=np.zeros((0, 1), np.float32), senders=np.zeros(0, np.int32),
                             receivers=np.zeros(0, np.int32), n_node=n_node,
                             n_edge=np.zeros(n_graph_pad, np.int32), globals=None)


def tiny(name="particlenet_lite", **keys):
    config = default_model_config(name)
    config.update(dict(blocks=((8, 8), (6,)), k=3, head=(8,), max_constituents=12), **keys)
    return build_model(config)


def test_the_default_sizes_have_the_papers_parameter_counts():
    # Qu & Gouskos 2019, Table 2: ParticleNet 366k, ParticleNet-Lite 26k parameters (LayerNorm
    # here has the same two vectors per layer as BatchNorm's trainable scale and shift)
    graph = jet_batch([10])
    counts = {}
    for name in ("particlenet", "particlenet_lite"):
        model = build_model(default_model_config(name))
        shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), graph)["params"]  # no compile
        counts[name] = param_count(shapes)
    assert abs(counts["particlenet"] - 366_000) < 1_000
    assert abs(counts["particlenet_lite"] - 26_000) < 500


def test_edgeconv_is_the_mean_of_the_edge_function_plus_the_shortcut():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 3)).astype(np.float32)
    mask = np.array([[1, 1, 1, 1, 0], [1, 1, 1, 0, 0]], bool)
    x[~mask] = 0.0
    block = DenseEdgeConv((4,), k=2, layer_norm=False)
    params = jax.jit(block.init)(jax.random.PRNGKey(1), x, mask, x)["params"]
    out = np.asarray(jax.jit(block.apply)({"params": params}, x, mask, x))
    w, b = np.asarray(params["kernel"]), np.asarray(params["bias"])
    ws, bs = np.asarray(params["shortcut"]["kernel"]), np.asarray(params["shortcut"]["bias"])
    for g in range(2):
        for i in range(5):
            if not mask[g, i]:
                assert not out[g, i].any()  # padded slots stay zero
                continue
            others = [j for j in np.flatnonzero(mask[g]) if j != i]
            near = sorted(others, key=lambda j: np.sum((x[g, i] - x[g, j]) ** 2))[:2]
            edges = [np.maximum(np.concatenate([x[g, i], x[g, j] - x[g, i]]) @ w + b, 0) for j in near]
            want = np.maximum(np.mean(edges, 0) + x[g, i] @ ws + bs, 0)
            np.testing.assert_allclose(out[g, i], want, rtol=1e-5, atol=1e-5)


def test_padding_and_the_other_jets_never_reach_a_jets_output():
    model = tiny()
    graph = jet_batch([4, 7, 2])
    params = jax.jit(model.init)(jax.random.PRNGKey(0), graph)["params"]
    apply = jax.jit(model.apply)
    out = np.asarray(apply({"params": params}, graph))
    assert out.shape == (4, 1) and np.all(np.isfinite(out))
    # other values in the padding nodes and in jet 0: same shapes, same program, so jets 1 and 2
    # are bitwise equal (their own arithmetic is unchanged)
    nodes = np.array(graph.nodes)
    nodes[13:] = 1e3
    nodes[:4] = -7.0
    changed = np.asarray(apply({"params": params}, graph._replace(nodes=nodes)))
    np.testing.assert_array_equal(changed[1:3], out[1:3])
    # the same jets in a larger padded batch (other shapes: equal within float rounding)
    bigger = jet_batch([4, 7, 2], pad_nodes=40, n_graph_pad=7)
    np.testing.assert_allclose(np.asarray(apply({"params": params}, bigger))[:3], out[:3],
                               rtol=1e-5, atol=1e-6)


def test_dropout_acts_in_training_only_and_gradients_are_finite():
    model = tiny(dropout=0.5)
    graph = jet_batch([4, 7, 2])
    params = jax.jit(model.init)(jax.random.PRNGKey(0), graph)["params"]

    @jax.jit
    def loss(p, key):
        return jnp.sum(model.apply({"params": p}, graph, train=True, rngs={"dropout": key}))

    assert float(loss(params, jax.random.PRNGKey(1))) != float(loss(params, jax.random.PRNGKey(2)))
    grads = jax.jit(jax.grad(loss))(params, jax.random.PRNGKey(1))
    assert all(np.all(np.isfinite(np.asarray(g))) for g in jax.tree_util.tree_leaves(grads))


def test_model_config_errors_name_the_key():
    for key, value in (("k", 0), ("blocks", ((8, -1),)), ("head", (0,)), ("dropout", 1.5),
                       ("level", "node"), ("max_constituents", 0)):
        config = default_model_config("particlenet_lite")
        config[key] = value
        with pytest.raises(ConfigError, match=rf"model\.{key}"):
            build_model(config)


def test_input_standardisation_equals_standardising_the_features_beforehand():
    # the model with (shift, scale) on raw inputs vs the model without them on inputs already
    # standardised by numpy: the same program on equal-shaped arrays, so equal to float32 rounding
    # of the one subtraction and multiplication (not bitwise: numpy and XLA may round them apart)
    shift, scale = (0.0, 0.0, 1.7, 2.1, -4.65, -4.65, 0.27), (4.0, 4.0, 0.75, 0.75, 0.75, 0.75, 5.0)
    graph = jet_batch([5, 9])
    plain, standardising = tiny(), tiny(input_shift=shift, input_scale=scale)
    params = plain.init(jax.random.PRNGKey(0), graph)
    done_before = graph._replace(nodes=((graph.nodes - np.float32(shift)) * np.float32(scale)).astype(np.float32))
    np.testing.assert_allclose(standardising.apply(params, graph), plain.apply(params, done_before),
                               rtol=1e-5, atol=1e-5)
    # and it acts: a raw batch gives other outputs than its standardised self
    assert not np.allclose(plain.apply(params, graph), plain.apply(params, done_before), atol=1e-3)


def test_input_standardisation_errors_name_the_key():
    with pytest.raises(ConfigError, match=r"model\.input_scale"):
        tiny(input_scale=("a",))
    with pytest.raises(ConfigError, match=r"model\.input_shift.*model\.input_scale"):
        tiny(input_shift=(1.0, 2.0), input_scale=(1.0,))


def test_norm_act_is_flax_layer_norm_then_the_activation_in_value_and_gradient():
    # the same formula (one-pass variance, epsilon 1e-6), row sums in another order: equal to
    # float32 rounding, not bitwise
    import flax.linen as nn

    from gnntrack.nn.particlenet import NormAct

    x = jnp.asarray(np.random.default_rng(0).normal(1.0, 2.0, size=(3, 5, 4, 24)).astype(np.float32))
    params = {"scale": jnp.linspace(0.5, 1.5, 24), "bias": jnp.linspace(-0.2, 0.2, 24)}
    for activation in ("relu", "identity"):
        ours = lambda p, a=activation: jnp.sum(jnp.sin(NormAct(a).apply({"params": p}, x)))  # noqa: E731
        act = jax.nn.relu if activation == "relu" else (lambda v: v)
        flax_ = lambda p, a=act: jnp.sum(jnp.sin(a(nn.LayerNorm().apply({"params": p}, x))))  # noqa: E731
        np.testing.assert_allclose(ours(params), flax_(params), rtol=1e-5)
        for g_ours, g_flax in zip(jax.tree_util.tree_leaves(jax.grad(ours)(params)),
                                  jax.tree_util.tree_leaves(jax.grad(flax_)(params))):
            np.testing.assert_allclose(g_ours, g_flax, rtol=1e-4, atol=1e-4)
