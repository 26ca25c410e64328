"""`gnntrack bench` / run_benchmark at a tiny size: keys, sanity of numbers, CLI JSON line; the
analytic FLOP count against XLA's cost analysis."""

import json

import flax.linen as nn
import jax
import numpy as np
import optax
import pytest

from gnntrack import cli
from gnntrack.bench import (compiled_flops, dot_signatures, flop_summary, make_infer_step,
                            make_train_step, message_flops, model_flops, random_graph,
                            run_benchmark, weighted_bce)
from gnntrack.nn.models import FastSegmentClassifier, InteractionNetwork, SegmentClassifier
from gnntrack.nn.ops import use_kernels
from gnntrack.nn.registry import get_message, register_message

KEYS = {"train_step_ms", "infer_ms", "flops_per_train_step", "flops_per_inference", "flops_source",
        "recompute_flops_per_train_step", "xla_flops_per_train_step", "xla_flops_per_inference",
        "gflops_per_s", "devices", "jax_version", "params"}


def test_run_benchmark_reports_positive_timings_and_flops():
    result = run_benchmark("segment_classifier", hidden=8, n_iters=1, nodes=40, edges=120,
                           steps=2, warmup=1, floor=True)
    assert KEYS <= set(result)
    assert result["train_step_ms"] > 0 and result["infer_ms"] > 0
    assert result["flops_per_train_step"] > result["flops_per_inference"] > 0
    assert result["flops_source"] == "analytic"
    assert result["n_dots"] > 0 and result["flop_floor_ms"] > 0


def test_bench_cli_prints_one_json_line(capsys):
    code = cli.main(["bench", "--model", "interaction_network", "--hidden", "8", "--nodes", "30",
                     "--edges", "90", "--steps", "1", "--warmup", "0", "--json"])
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert KEYS <= set(result) and result["model"] == "interaction_network"
    assert result["flops_source"] == "analytic" and result["flops_form"] == "reference"
    assert result["gflops_per_s"] == pytest.approx(
        result["flops_per_train_step"] / result["train_step_ms"] / 1e6)


def test_weighted_bce_counts_real_edges_only():
    logits = np.array([0.0, 0.0, 5.0], np.float32)
    labels = np.array([1.0, 0.0, 1.0], np.float32)
    mask = np.array([1.0, 1.0, 0.0], np.float32)
    got = float(weighted_bce(logits, labels, mask, pos_weight=3.0))
    np.testing.assert_allclose(got, (3.0 + 1.0) * np.log(2.0) / 2.0, rtol=1e-6)


def test_dot_signatures_counts_forward_and_backward_matmuls():
    import jax
    import jax.numpy as jnp
    a, b = jnp.ones((4, 3)), jnp.ones((3, 2))
    assert sum(dot_signatures(lambda a: jnp.sum(a @ b), a).values()) == 1
    assert sum(dot_signatures(jax.grad(lambda a: jnp.sum(a @ b)), a).values()) >= 1
    graph, y = random_graph(5, 7, seed=1)
    assert graph.nodes.shape == (5, 3) and graph.senders.max() < 5 and y.shape == (7,)


# Matmul-dominated forms (identity activation, no LayerNorm; the pure-XLA forms, unchunked): the
# analytic count is XLA's cost analysis less what it leaves out by design -- elementwise ops
# (bias adds, the edge weights' sigmoid, residual adds, loss, Adam), which XLA counts at one FLOP
# per element. Both count a matmul as 2*m*k*n, a gather as 0 and a sum as one add per element.
# So the count must lie within 3% below XLA's (it is ~1% below at these sizes).
PLAIN = dict(activation="identity", layer_norm=False)
XLA_FORMS = [
    pytest.param(SegmentClassifier(hidden=32, n_iters=1, **PLAIN), 0,
                 id="segment-reference"),
    pytest.param(FastSegmentClassifier(hidden=32, n_iters=1, chunk_size=0,
                                   cpu_kernels="xla", **PLAIN), 0, id="segment-fast-xla"),
    pytest.param(SegmentClassifier(hidden=32, n_iters=1, use_edge_features=True,
                                   message="weighted_sum_in", **PLAIN), 4,
                 id="segment-edge-features"),
    pytest.param(InteractionNetwork(hidden=32, n_iters=2, activation="identity"), 4,
                 id="interaction-network"),
]


@pytest.mark.parametrize("model, edge_features", XLA_FORMS)
def test_model_flops_match_xla_cost_analysis_on_pure_xla_forms(model, edge_features):
    graph, y = random_graph(100, 400, 3, edge_features)
    params = model.init(jax.random.key(0), graph)["params"]
    tx = optax.adam(1e-3)
    with use_kernels(False):  # the messages' sums in XLA too (XLA counts a kernel as zero)
        xla_train = compiled_flops(make_train_step(model, tx, donate=False), params,
                                   tx.init(params), graph, y, np.ones_like(y))
        xla_infer = compiled_flops(make_infer_step(model), params, graph)
    counted = model_flops(model, 100, 400, 3, edge_features)
    assert 0.97 * xla_infer <= counted["forward"] <= xla_infer
    assert 0.97 * xla_train <= counted["train_step"] <= xla_train
    assert counted["recompute"] == 0 and counted["executed"] == counted["train_step"]


def test_fused_kernels_count_the_fast_arithmetic_and_their_recomputation(monkeypatch):
    """The kernels compute the fast form's arithmetic: same model FLOPs as the fast XLA form;
    their backward pass recomputes every tile of the edge network (gathered-table sum and its
    hidden layers, not the logit layer) and the node network's layers after the first matmul."""
    n, e, h, f = 1000, 4000, 64, 3
    kwargs = dict(hidden=h, n_iters=2, edge_layers=3, node_layers=4)
    xla_form = model_flops(FastSegmentClassifier(cpu_kernels="xla", chunk_size=0, **kwargs), n, e, f)
    blocks = model_flops(FastSegmentClassifier(cpu_kernels="xla", chunk_size=512, **kwargs), n, e, f)
    monkeypatch.setattr(FastSegmentClassifier, "resolved_cpu_kernels", lambda self: "fused")
    fused = model_flops(FastSegmentClassifier(**kwargs), n, e, f)
    assert fused["form"] == "fast, fused CPU kernels" and xla_form["form"] == "fast"
    assert fused["train_step"] == xla_form["train_step"]
    assert fused["forward"] == xla_form["forward"]
    edge_tiles = e * h + 2 * (2 * e * h * h)       # table sum + 2 hidden layers, per call
    node_rows = 3 * (2 * n * h * h)                # 3 layers after the first matmul, per call
    assert fused["recompute"] == 3 * edge_tiles + 2 * node_rows
    assert xla_form["recompute"] == 0
    # Row blocks in XLA recompute the same plus the logit layer, once there is more than one block.
    assert blocks["recompute"] == fused["recompute"] + 3 * 2 * e * h


def test_unknown_models_fall_back_to_xla_cost_analysis_and_say_so():
    assert model_flops(nn.Dense(4), nodes=10, edges=20) is None
    summary = flop_summary(None, 5e9, 2e9)
    assert summary["flops_source"] == "xla_cost_analysis"
    assert summary["flops_per_train_step"] == summary["xla_flops_per_train_step"] == 5e9
    assert summary["flops_per_inference"] == 2e9


def test_a_message_the_count_does_not_know_is_counted_from_its_jaxpr():
    """A registered message is counted op by op from its jaxpr (and its VJP's): a copy of a
    built-in message gets the built-in's analytic count, whether its sums run in the graph-op
    kernels or in XLA here."""
    register_message("test_flops_copy_of_weighted_sum_in")(get_message("weighted_sum_in"))
    known, known_width = message_flops("weighted_sum_in", 50, 200, 8, 1)
    other, width = message_flops("test_flops_copy_of_weighted_sum_in", 50, 200, 8, 1)
    assert width == known_width == 8
    assert known == {("forward", "sums"): 2 * 200 * 8, ("backward", "sums"): 4 * 200 * 8}
    # (the XLA form may add a scalar op or two: equal up to a few FLOPs)
    for key, value in known.items():
        assert other[key] == pytest.approx(value, abs=4)


def test_the_benchmarked_step_is_the_engines_train_step():
    """bench.make_train_step wraps gnntrack.train.step's step: same loss and update as the step
    `gnntrack train` runs through DataParallel on one device (the same arithmetic inside another
    jit, so fusion may differ: compared to float32 rounding, not bitwise)."""
    from gnntrack.graphs.batching import DeviceBatch
    from gnntrack.train.losses import default_loss_config
    from gnntrack.train.parallel import DataParallel, default_parallel_config
    from gnntrack.train.state import TrainState
    from gnntrack.train.step import make_train_step as engine_step

    model = SegmentClassifier(hidden=8, n_iters=2)
    graph, y = random_graph(30, 90, seed=3)
    params = model.init(jax.random.PRNGKey(0), graph)["params"]
    tx = optax.adam(1e-2)
    mask = np.ones_like(y)
    new_params, _, loss = make_train_step(model, tx, donate=False)(params, tx.init(params), graph, y, mask)

    config = default_parallel_config()
    config.n_devices = 1
    dp = DataParallel(config)
    state = TrainState(step=np.int32(0), params=params, opt_state=tx.init(params), rng=jax.random.PRNGKey(0))
    batch = DeviceBatch(graph=jax.tree_util.tree_map(lambda x: x[None], graph), y=y[None],
                        edge_mask=np.ones((1, 90), bool), node_mask=np.ones((1, 30), bool),
                        graph_mask=np.ones((1, 1), bool))
    ref_state, metrics = dp.train_step(engine_step(model, tx, default_loss_config(), dp.axis_name))(state, batch)
    np.testing.assert_allclose(loss, metrics["loss"], rtol=1e-6)
    for a, b in zip(jax.tree_util.tree_leaves(new_params), jax.tree_util.tree_leaves(ref_state.params)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
