"""Message-function registry: lookup errors, built-ins, and the README example trains."""

import re
import runpy
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gnntrack.errors import ConfigError
from gnntrack.nn import available_messages, build_model, default_model_config, get_message, register_message

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE / "readme_example.py"


def test_unknown_message_lists_available_names():
    with pytest.raises(ConfigError) as info:
        get_message("no_such_message")
    assert "bidirectional_weighted_sum" in str(info.value) and "model.message" in str(info.value)
    config = default_model_config("segment_classifier")
    config.message = "no_such_message"
    with pytest.raises(ConfigError, match="available: .*sum_incoming"):
        build_model(config)


def test_builtin_bidirectional_sum_matches_dense_adjacency():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 2)).astype(np.float32)
    s = np.array([0, 1, 1, 3, 4], np.int32)
    r = np.array([1, 2, 2, 0, 4], np.int32)
    w = rng.random((5, 1)).astype(np.float32)
    a = np.zeros((5, 5), np.float32)  # a[r, s] = summed weight of edges s -> r
    np.add.at(a, (r, s), w[:, 0])
    got = np.asarray(get_message("bidirectional_weighted_sum")(x, w, s, r))
    np.testing.assert_allclose(got[:, :2], a @ x, rtol=1e-6)
    np.testing.assert_allclose(got[:, 2:], a.T @ x, rtol=1e-6)


def test_registered_function_is_selectable_and_trains():
    @register_message("test_max_in")
    def max_in(x, e, senders, receivers):
        m = jax.ops.segment_max(e * x[senders], receivers, num_segments=x.shape[0])
        return jnp.where(jnp.isfinite(m), m, 0.0)  # nodes without incoming edges

    assert "test_max_in" in available_messages()
    config = default_model_config("segment_classifier")
    config.message, config.hidden, config.n_iters = "test_max_in", 8, 2
    model = build_model(config)
    from gnntrack.bench import random_graph
    graph, y = random_graph(20, 60, seed=3)
    params = model.init(jax.random.key(0), graph)["params"]
    tx = optax.adam(3e-2)
    opt_state = tx.init(params)
    loss_fn = lambda p: optax.sigmoid_binary_cross_entropy(model.apply({"params": p}, graph), y).mean()

    @jax.jit
    def step(params, opt_state):
        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state)
        return optax.apply_updates(params, updates), opt_state, loss

    losses = []
    for _ in range(15):
        params, opt_state, loss = step(params, opt_state)
        losses.append(float(loss))
    assert losses[-1] < 0.7 * losses[0]


def test_readme_example_runs_and_loss_decreases(capsys):
    lines = EXAMPLE.read_text().splitlines()
    assert len(lines) <= 20
    ns = runpy.run_path(str(EXAMPLE))
    initial = ns["model"].init(jax.random.key(1), ns["graph"])["params"]
    assert float(ns["loss_fn"](ns["params"])) < 0.5 * float(ns["loss_fn"](initial))
    assert "final loss" in capsys.readouterr().out


def test_readme_snippet_matches_the_tested_file():
    """The README's message-function example is the tested file verbatim."""
    readme = (HERE.parents[1] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.+?)```", readme, flags=re.S)
    assert EXAMPLE.read_text() in blocks


# --- the model registry -------------------------------------------------------------------------

def test_unknown_model_name_is_a_config_error_listing_the_models():
    # an unknown name used to build the interaction network silently
    with pytest.raises(ConfigError, match=r"unknown model 'no_such_model' \(config key 'model.name'\); "
                                          r"available: segment_classifier, interaction_network"):
        build_model({"name": "no_such_model"})
    with pytest.raises(ConfigError, match="available: "):
        default_model_config("no_such_model")


def test_registered_class_and_factory_build_with_their_defaults():
    import flax.linen as nn
    import ml_collections

    from gnntrack.nn import available_models, register_model

    def defaults():
        return ml_collections.ConfigDict(dict(name="test_linear", width=3))

    @register_model("test_linear", defaults)
    class Linear(nn.Module):
        width: int = 3

        @nn.compact
        def __call__(self, graph, train=False):
            return nn.Dense(self.width)(graph.nodes)

    register_model("test_linear_factory", defaults)(lambda cfg: Linear(width=2 * cfg.width))
    assert {"test_linear", "test_linear_factory"} <= set(available_models())
    assert default_model_config("test_linear").width == 3
    assert build_model({"name": "test_linear"}).width == 3
    assert build_model({"name": "test_linear_factory", "width": 4}).width == 8
    with pytest.raises(ConfigError, match="unknown config key 'model.hidden'"):
        build_model({"name": "test_linear", "hidden": 4})


LAYER_EXAMPLE = HERE / "readme_layer_example.py"


def test_readme_layer_example_registers_a_model_that_learns_and_is_in_the_readme():
    """The README's parametrised-layer example: about 20 lines, its model is built by name with
    its own defaults (one key overridden), and it learns the README graph's edge labels."""
    assert len(LAYER_EXAMPLE.read_text().splitlines()) <= 22
    readme = (HERE.parents[1] / "README.md").read_text()
    assert LAYER_EXAMPLE.read_text() in re.findall(r"```python\n(.+?)```", readme, flags=re.S)
    runpy.run_path(str(LAYER_EXAMPLE))
    config = default_model_config("gated_edges")
    config.hidden = 8
    model = build_model(config)
    assert model.hidden == 8 and model.n_iters == 2
    graph = runpy.run_path(str(EXAMPLE))["graph"]
    labels = jnp.array([1.0, 1.0, 1.0, 1.0, 1.0, 0.0])
    params = model.init(jax.random.key(0), graph)["params"]
    tx = optax.adam(3e-2)
    opt_state = tx.init(params)
    loss_fn = lambda p: optax.sigmoid_binary_cross_entropy(model.apply({"params": p}, graph), labels).mean()  # noqa: E731
    step = jax.jit(jax.value_and_grad(loss_fn))
    losses = []
    for _ in range(30):
        loss, grads = step(params)
        updates, opt_state = tx.update(grads, opt_state)
        params = optax.apply_updates(params, updates)
        losses.append(float(loss))
    assert losses[-1] < 0.5 * losses[0]
