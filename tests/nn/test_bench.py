"""`gnntrack bench` / run_benchmark at a tiny size: keys, sanity of numbers, CLI JSON line."""

import json

import numpy as np

from gnntrack import cli
from gnntrack.bench import dot_signatures, random_graph, run_benchmark, weighted_bce

KEYS = {"train_step_ms", "infer_ms", "flops_per_step", "gflops_per_s", "devices", "jax_version", "params"}


def test_run_benchmark_reports_positive_timings_and_flops():
    result = run_benchmark("segment_classifier", hidden=8, n_iters=1, nodes=40, edges=120,
                           steps=2, warmup=1, floor=True)
    assert KEYS <= set(result)
    assert result["train_step_ms"] > 0 and result["infer_ms"] > 0
    assert result["flops_per_step"] > result["infer_flops"] > 0
    assert result["n_dots"] > 0 and result["flop_floor_ms"] > 0


def test_bench_cli_prints_one_json_line(capsys):
    code = cli.main(["bench", "--model", "interaction_network", "--hidden", "8", "--nodes", "30",
                     "--edges", "90", "--steps", "1", "--warmup", "0", "--json"])
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert KEYS <= set(result) and result["model"] == "interaction_network"


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
