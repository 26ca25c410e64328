"""Students: the fully connected network and the PFN, on reduced inputs of the teacher's jets."""

import jax
import numpy as np
import pytest

from gnntrack.errors import ConfigError
from gnntrack.nn import build_model, default_model_config
from tests.nn.test_particlenet import jet_batch


def build(name, **keys):
    config = default_model_config(name)
    config.update(keys)
    return build_model(config)


def outputs(model, graph, params=None):
    params = params or jax.jit(model.init)(jax.random.PRNGKey(0), graph)["params"]
    return params, np.asarray(jax.jit(model.apply)({"params": params}, graph))


@pytest.mark.parametrize("name,keys", [("jet_fc", dict(hidden=(16, 8))), ("jet_pfn", dict(phi=(8, 8), head=(8,)))])
def test_a_student_reads_only_its_reduced_inputs(name, keys):
    # 3 of the 7 features and the 5 hardest constituents: the other inputs never matter
    model = build(name, n_features=3, max_constituents=5, **keys)
    graph = jet_batch([4, 7, 2])
    params, out = outputs(model, graph)
    assert out.shape == (4, 1) and np.all(np.isfinite(out))
    nodes = np.array(graph.nodes)
    nodes[:, 3:] = 9.0  # features past n_features
    nodes[4 + 5:4 + 7] = -9.0  # jet 1's constituents 6 and 7
    nodes[13:] = 1e3  # jraph padding nodes
    # same shapes, same program: the untouched arithmetic is bitwise the same
    np.testing.assert_array_equal(outputs(model, graph._replace(nodes=nodes), params)[1][:3], out[:3])


def test_the_fc_student_has_the_studys_input_width():
    params, _ = outputs(build("jet_fc"), jet_batch([3], f=4))
    assert params["head_0"]["kernel"].shape == (80 * 4, 256)


def test_the_pfn_is_a_sum_over_constituents_in_any_order():
    model = build("jet_pfn", phi=(8, 8), head=(8,))
    graph = jet_batch([6, 3])
    params, out = outputs(model, graph)
    nodes = np.array(graph.nodes)
    nodes[:6] = nodes[:6][::-1]
    np.testing.assert_allclose(outputs(model, graph._replace(nodes=nodes), params)[1][:2], out[:2], rtol=1e-5)


def test_student_config_errors_name_the_key():
    with pytest.raises(ConfigError, match=r"model\.hidden"):
        build("jet_fc", hidden=(8, 0))
    with pytest.raises(ConfigError, match=r"model\.n_features"):
        build("jet_pfn", n_features=-1)


@pytest.mark.parametrize("name,keys", [("jet_fc", dict(hidden=(16, 8))), ("jet_pfn", dict(phi=(8, 8), head=(8,)))])
def test_students_standardise_their_leading_features_and_keep_empty_slots_zero(name, keys):
    shift, scale = (0.0, 0.0, 1.7, 2.1, -4.65, -4.65, 0.27), (4.0, 4.0, 0.75, 0.75, 0.75, 0.75, 5.0)
    graph = jet_batch([4, 7, 2], f=7)
    plain = build(name, n_features=4, **keys)
    standardising = build(name, n_features=4, input_shift=shift, input_scale=scale, **keys)
    params, _ = outputs(plain, graph)
    done_before = graph._replace(nodes=((graph.nodes - np.float32(shift)) * np.float32(scale)).astype(np.float32))
    # equal to float32 rounding of one subtraction and multiplication done by numpy vs XLA; the
    # FC student's empty slots are zero in both (not -shift * scale), so its flat input matches
    np.testing.assert_allclose(outputs(standardising, graph, params)[1], outputs(plain, done_before, params)[1],
                               rtol=1e-5, atol=1e-5)
