"""The fused CPU edge kernel (gnntrack.nn.cpu_kernels): same logits and gradients as the reference
model, padding invariance, bad indices, empty graphs, how "auto" resolves, and the build cache."""

import os
import platform
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import jraph
import numpy as np
import pytest

from gnntrack.bench import random_graph
from gnntrack.errors import ConfigError
from gnntrack.nn import cpu_kernels
from gnntrack.nn.models import (FastSegmentClassifier, SegmentClassifier, build_model,
                                cpu_kernels_label, default_model_config, resolve_cpu_kernels)
from tests.nn.model_helpers import assert_close_across_shapes, perturbed_params, tanh_loss

CAN_BUILD = cpu_kernels._unavailable_reason() is None
needs_kernel = pytest.mark.skipif(not CAN_BUILD, reason=f"fused CPU kernel cannot be built here: "
                                                        f"{cpu_kernels._unavailable_reason()}")


def test_kernel_is_available_wherever_it_can_be_built():
    # On Linux/macOS x86-64 with AVX2+FMA and a C++ compiler (CI, the dev machine) the kernel must
    # build: a silent fallback to XLA would hide a broken kernel behind green model tests.
    if not CAN_BUILD:
        assert not cpu_kernels.available()
        assert cpu_kernels.status().label().startswith("xla (")
        return
    status = cpu_kernels.status()
    assert status.available, status.detail
    assert status.label().startswith("fused (") and "AVX2+FMA" in status.label()


@needs_kernel
@pytest.mark.parametrize("variant", [
    dict(hidden=16, edge_layers=3, chunk_size=64),            # chunked XLA form for the gradient
    dict(hidden=32, edge_layers=1, chunk_size=0),             # one hidden layer: no matmul in kernel
    dict(hidden=16, edge_layers=2, remat="iteration", chunk_size=64),
    dict(hidden=64, edge_layers=3),                           # the reference workload's width
])
def test_fused_kernel_matches_reference_logits_and_gradients(variant):
    graph, _ = random_graph(70, 301, seed=3)  # 301 edges: tiles of 24 and chunks end mid-way
    common = {k: v for k, v in variant.items() if k in ("hidden", "edge_layers")}
    reference = SegmentClassifier(n_iters=2, **common)
    fused = FastSegmentClassifier(n_iters=2, cpu_kernels="fused", **variant)
    assert fused.resolved_cpu_kernels() == "fused"
    _assert_kernels_match_reference(fused, reference, graph)


def _assert_kernels_match_reference(fused, reference, graph):
    """`fused` runs the edge, node and message kernels and gives `reference`'s logits and
    gradients (perturbed parameters, so LayerNorm scales and biases are not trivial)."""
    params = perturbed_params(reference, graph)
    text = jax.jit(fused.apply).lower({"params": params}, graph).as_text()
    assert cpu_kernels.EDGE_MLP_TARGET in text and cpu_kernels.ROW_MLP_TARGET in text
    assert cpu_kernels.SEGMENT_GATHER_SUM_TARGET in text  # the message, through the kernels too
    np.testing.assert_allclose(jax.jit(fused.apply)({"params": params}, graph),
                               jax.jit(reference.apply)({"params": params}, graph),
                               rtol=1e-5, atol=2e-5)
    g_ref = jax.jit(jax.grad(tanh_loss(reference, graph)))(params)
    g_fused = jax.jit(jax.grad(tanh_loss(fused, graph)))(params)
    for a, b in zip(jax.tree_util.tree_leaves(g_fused), jax.tree_util.tree_leaves(g_ref)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * float(jnp.abs(b).max()) + 1e-6)


@needs_kernel
def test_fused_kernel_matches_xla_form_and_is_reproducible():
    graph, _ = random_graph(50, 200, seed=4)
    xla = FastSegmentClassifier(hidden=16, n_iters=2, cpu_kernels="xla")
    fused = FastSegmentClassifier(hidden=16, n_iters=2, cpu_kernels="fused")
    params = perturbed_params(xla, graph)
    logits = jax.jit(fused.apply)({"params": params}, graph)
    # different programs (kernel vs XLA tiling and summation order): float tolerance
    np.testing.assert_allclose(logits, jax.jit(xla.apply)({"params": params}, graph),
                               rtol=1e-5, atol=1e-5)
    # same program, same shapes, same process: fixed summation orders, no atomics, so bitwise
    np.testing.assert_array_equal(jax.jit(fused.apply)({"params": params}, graph), logits)


@pytest.mark.parametrize("kernels", [pytest.param("fused", marks=needs_kernel), "xla"])
def test_padding_never_changes_real_edge_logits(kernels):
    """Real edges' logits do not depend on padding: equal within float32 rounding across shapes,
    bitwise equal at the same shapes whatever the padding holds; a leak is caught."""
    graph, _ = random_graph(50, 200, seed=4)
    model = FastSegmentClassifier(hidden=16, n_iters=2, cpu_kernels=kernels)
    params = perturbed_params(model, graph)
    apply = jax.jit(model.apply)
    logits = apply({"params": params}, graph)
    padded = jraph.pad_with_graphs(graph, n_node=64, n_edge=1000, n_graph=2)
    padded_logits = apply({"params": params}, padded)[:200]
    assert_close_across_shapes(padded_logits, logits)  # 64 vs 50 node rows

    # Same shapes, same program: only the padding's values differ (garbage features on the
    # padding nodes, padding edges spread over them). Every operation is per row or a sum over a
    # node's own edges in edge order, so real rows see the same arithmetic: bitwise equal.
    rng = np.random.default_rng(0)
    nodes, senders, receivers = (np.array(a) for a in (padded.nodes, padded.senders, padded.receivers))
    nodes[50:] = 100 * rng.normal(size=nodes[50:].shape)
    senders[200:], receivers[200:] = rng.integers(50, 64, (2, 800))
    garbage = padded._replace(nodes=nodes, senders=senders, receivers=receivers)
    np.testing.assert_array_equal(apply({"params": params}, garbage)[:200], padded_logits)

    # The cross-shape tolerance still catches one padding edge leaking into a real node.
    leaky = padded._replace(receivers=np.where(np.arange(1000) == 200, 7, padded.receivers))
    with pytest.raises(AssertionError):
        assert_close_across_shapes(apply({"params": params}, leaky)[:200], logits)


def _kernel_inputs(n_nodes=30, n_edges=50, width=16, n_layers=2, seed=0):
    rng = np.random.default_rng(seed)
    f = lambda *shape: jnp.asarray(rng.normal(size=shape), jnp.float32)  # noqa: E731
    return dict(ps=f(n_nodes, width), pr=f(n_nodes, width),
                senders=jnp.asarray(rng.integers(0, n_nodes, n_edges), jnp.int32),
                receivers=jnp.asarray(rng.integers(0, n_nodes, n_edges), jnp.int32),
                vecs=f(n_layers, 3, width), mats=f(n_layers - 1, width, width) / 4,
                w_out=f(width), b_out=f(1))


def _numpy_row_mlp(x, vecs, mats):
    """The kernels' layers in float64 numpy (independent of gnntrack.nn.layers)."""
    h = np.asarray(x, np.float64)
    vecs, mats = np.asarray(vecs, np.float64), np.asarray(mats, np.float64)
    for layer in range(vecs.shape[0]):
        if layer:
            h = h @ mats[layer - 1]
        h = h + vecs[layer, 0]
        mean, var = h.mean(-1, keepdims=True), h.var(-1, keepdims=True)
        h = np.tanh((h - mean) / np.sqrt(var + 1e-6) * vecs[layer, 1] + vecs[layer, 2])
    return h


def _numpy_edge_mlp(ps, pr, senders, receivers, vecs, mats, w_out, b_out):
    h = np.asarray(ps, np.float64)[np.asarray(senders)] + np.asarray(pr, np.float64)[np.asarray(receivers)]
    return _numpy_row_mlp(h, vecs, mats) @ np.asarray(w_out, np.float64) + float(b_out[0])


def _jnp_layers(h, vecs, mats):
    """The same layers in jnp (one-pass variance, as the kernels), for autodiff references."""
    for layer in range(vecs.shape[0]):
        h = (h @ mats[layer - 1] if layer else h) + vecs[layer, 0]
        mean = h.mean(-1, keepdims=True)
        var = jnp.maximum((h * h).mean(-1, keepdims=True) - mean * mean, 0.0)
        h = jnp.tanh((h - mean) * jax.lax.rsqrt(var + 1e-6) * vecs[layer, 1] + vecs[layer, 2])
    return h


@needs_kernel
@pytest.mark.parametrize("width", cpu_kernels.MLP_WIDTHS)
def test_kernel_against_float64_numpy(width):
    inputs = _kernel_inputs(width=width, n_layers=3, n_edges=37)
    out = jax.jit(cpu_kernels.edge_mlp)(**inputs)
    assert out.shape == (37,) and out.dtype == jnp.float32
    np.testing.assert_allclose(out, _numpy_edge_mlp(**inputs), rtol=1e-5, atol=1e-5)


def _assert_close_to_scale(got, want):
    scale = float(jnp.abs(want).max()) if want.size else 0.0
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-5 * (1 + scale))


@needs_kernel
@pytest.mark.parametrize("width", [16, 64])
def test_row_kernel_against_float64_numpy(width):
    inputs = _kernel_inputs(width=width, n_layers=4, n_nodes=41)
    x = inputs["ps"] * 3
    out = jax.jit(cpu_kernels.row_mlp)(x, inputs["vecs"][:3], inputs["mats"][:2])
    assert out.shape == (41, width) and out.dtype == jnp.float32
    np.testing.assert_allclose(out, _numpy_row_mlp(x, inputs["vecs"][:3], inputs["mats"][:2]),
                               rtol=1e-5, atol=1e-5)
    assert cpu_kernels.row_mlp(x[:0], inputs["vecs"], inputs["mats"]).shape == (0, width)


@needs_kernel
@pytest.mark.parametrize("width,n_layers,n_edges,with_extra",
                         [(16, 3, 1009, True), (32, 1, 50, False), (64, 2, 13, True)])
def test_edge_kernel_gradient_matches_autodiff(width, n_layers, n_edges, with_extra):
    """edge_mlp_grad (fused backward; 1009 edges = two chunks, the second of one row), with or
    without a per-edge first-layer term, equals jax.vjp of the same network written in jnp, and
    is bitwise reproducible."""
    inputs = _kernel_inputs(n_nodes=40, n_edges=n_edges, width=width, n_layers=n_layers, seed=1)
    g = jnp.asarray(np.random.default_rng(2).normal(size=n_edges), jnp.float32)
    extra = (jnp.asarray(np.random.default_rng(3).normal(size=(n_edges, width)), jnp.float32)
             if with_extra else jnp.zeros((n_edges, width), jnp.float32))

    def network(ps, pr, vecs, mats, w_out, b_out, extra):
        h = ps[inputs["senders"]] + pr[inputs["receivers"]] + extra
        return _jnp_layers(h, vecs, mats) @ w_out + b_out[0]

    names = ("ps", "pr", "vecs", "mats", "w_out", "b_out")
    expected = jax.vjp(network, *(inputs[k] for k in names), extra)[1](g)
    grad_fn = jax.jit(cpu_kernels.edge_mlp_grad)
    d_in, *d_params = grad_fn(**inputs, g=g, extra=extra if with_extra else None)
    d_ps = jax.ops.segment_sum(d_in, inputs["senders"], num_segments=40)
    d_pr = jax.ops.segment_sum(d_in, inputs["receivers"], num_segments=40)
    for got, want in zip([d_ps, d_pr, *d_params, d_in], expected):
        _assert_close_to_scale(got, want)
    np.testing.assert_allclose(jax.jit(cpu_kernels.edge_mlp)(**inputs, extra=extra),
                               network(*(inputs[k] for k in names), extra), rtol=1e-5, atol=1e-5)
    again = grad_fn(**inputs, g=g, extra=extra if with_extra else None)
    for a, b in zip(again, [d_in, *d_params]):  # same call twice, fixed chunk order: bitwise
        np.testing.assert_array_equal(a, b)


@needs_kernel
def test_row_kernel_gradient_matches_autodiff():
    inputs = _kernel_inputs(n_nodes=1030, width=16, n_layers=3, seed=3)
    x, vecs, mats = inputs["ps"], inputs["vecs"], inputs["mats"]
    g = jnp.asarray(np.random.default_rng(4).normal(size=x.shape), jnp.float32)

    expected = jax.vjp(_jnp_layers, x, vecs, mats)[1](g)
    for got, want in zip(jax.jit(cpu_kernels.row_mlp_grad)(x, vecs, mats, g), expected):
        _assert_close_to_scale(got, want)


@needs_kernel
@pytest.mark.parametrize("remat", [False, "iteration"])
def test_kernels_run_with_edge_features(remat):
    """Edge features enter the edge kernel as a per-edge first-layer term (the quickstart's
    model): same logits and gradients as the reference model."""
    graph, _ = random_graph(40, 160, n_edge_features=2, seed=6)
    reference = SegmentClassifier(hidden=16, n_iters=2, use_edge_features=True)
    fused = FastSegmentClassifier(hidden=16, n_iters=2, use_edge_features=True,
                              cpu_kernels="fused", remat=remat, chunk_size=64)
    _assert_kernels_match_reference(fused, reference, graph)


@needs_kernel
def test_kernel_vmaps_and_handles_empty_edge_sets():
    inputs = _kernel_inputs()
    batched = {k: jnp.stack([v, v[::-1] if k in ("senders", "receivers") else v])
               for k, v in inputs.items()}
    out = jax.vmap(cpu_kernels.edge_mlp)(**batched)
    # vmap_method="sequential": the same kernel call on the same shapes per batch item: bitwise
    np.testing.assert_array_equal(out[0], cpu_kernels.edge_mlp(**inputs))
    empty = dict(inputs, senders=jnp.zeros((0,), jnp.int32), receivers=jnp.zeros((0,), jnp.int32))
    assert cpu_kernels.edge_mlp(**empty).shape == (0,)


@needs_kernel
def test_kernel_rejects_out_of_range_indices():
    inputs = _kernel_inputs(n_nodes=30)
    bad = dict(inputs, receivers=inputs["receivers"].at[7].set(30))
    with pytest.raises(Exception, match="index is out of range"):
        jax.block_until_ready(cpu_kernels.edge_mlp(**bad))
    bad = dict(inputs, senders=inputs["senders"].at[0].set(-1))
    with pytest.raises(Exception, match="index is out of range"):
        jax.block_until_ready(cpu_kernels.edge_mlp(**bad))


def test_resolve_cpu_kernels_choices():
    ok = dict(fast=True, hidden=64, activation="tanh", layer_norm=True, compute_dtype="float32",
              backend="cpu")
    assert resolve_cpu_kernels("xla", **ok) == "xla"
    assert resolve_cpu_kernels("auto", **ok) == ("fused" if cpu_kernels.available() else "xla")
    for bad, words in [(dict(fast=False), "impl='fast'"), (dict(hidden=24), "model.hidden"),
                       (dict(activation="relu"), "tanh"), (dict(compute_dtype="bfloat16"), "float32"),
                       (dict(backend="gpu"), "CPU")]:
        assert resolve_cpu_kernels("auto", **{**ok, **bad}) == "xla"
        with pytest.raises(ConfigError, match="model.cpu_kernels") as err:
            resolve_cpu_kernels("fused", **{**ok, **bad})
        assert words in str(err.value)
    with pytest.raises(ConfigError, match="model.cpu_kernels 'gpu'"):
        resolve_cpu_kernels("gpu", **ok)
    config = default_model_config("segment_classifier")
    assert config.cpu_kernels == "auto"
    config.cpu_kernels = "bogus"
    with pytest.raises(ConfigError, match="cpu_kernels"):
        build_model(config)
    assert cpu_kernels_label(SegmentClassifier()) == "xla"  # the reference form
    assert cpu_kernels_label(FastSegmentClassifier()) == (
        cpu_kernels.status().label() if cpu_kernels.available() else "xla")


def test_unavailable_reasons(monkeypatch):
    monkeypatch.setenv("GNNTRACK_CPU_KERNELS", "off")
    assert cpu_kernels._unavailable_reason() == "GNNTRACK_CPU_KERNELS=off"
    monkeypatch.delenv("GNNTRACK_CPU_KERNELS")
    monkeypatch.setenv("CXX", "no-such-compiler-xyz")
    assert cpu_kernels.find_compiler() is None
    if platform.machine().lower() in ("x86_64", "amd64") and CAN_BUILD:
        assert "compiler" in cpu_kernels._unavailable_reason()
    sample = "processor : 0\nflags\t\t: fpu sse2 avx2 fma bmi2\n"
    assert {"avx2", "fma"} <= cpu_kernels.cpu_flags(sample)
    assert cpu_kernels.cpu_flags("no flags here") == frozenset()
    macos = "machdep.cpu.features: FPU SSE2 FMA\nmachdep.cpu.leaf7_features: BMI1 AVX2\n"
    assert {"avx2", "fma"} <= cpu_kernels.cpu_flags(macos)


@needs_kernel
def test_build_is_cached_and_reports_compiler_errors(tmp_path, capsys):
    first = cpu_kernels.build(directory=tmp_path)
    assert "compiling edge_mlp.cc" in capsys.readouterr().err  # the one long step says so
    stamp = first.stat().st_mtime_ns
    assert cpu_kernels.build(directory=tmp_path) == first and first.stat().st_mtime_ns == stamp
    assert capsys.readouterr().err == ""  # a cached build is silent
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left
    broken = tmp_path / "broken.cc"
    broken.write_text("int main( {\n")
    with pytest.raises(RuntimeError, match="compiling broken.cc failed"):
        cpu_kernels.build(broken, directory=tmp_path / "other")
    assert not list((tmp_path / "other").glob("*.so"))


@needs_kernel
def test_fresh_process_uses_the_cache(tmp_path):
    """A second process finds the library the first one built instead of compiling again."""
    env = {**os.environ, "GNNTRACK_KERNEL_CACHE": str(tmp_path)}
    code = ("from gnntrack.nn import cpu_kernels; s = cpu_kernels.status(); "
            "assert s.available, s.detail; print(sorted(p.name for p in cpu_kernels.cache_dir().iterdir()))")
    runs = [subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                           timeout=300) for _ in range(2)]
    for run in runs:
        assert run.returncode == 0, run.stderr
    assert runs[0].stdout == runs[1].stdout and ".so" in runs[0].stdout
    assert sorted(p.name.split("-")[0] for p in Path(tmp_path).glob("*.so")) == ["edge_mlp", "graph_ops"]
