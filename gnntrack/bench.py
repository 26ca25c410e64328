"""Per-step speed of the models on a random graph: `gnntrack bench` and the scripts/ benchmarks.

    result = run_benchmark("segment_classifier", hidden=64, n_iters=8, nodes=20_000, edges=80_000)
    # {'train_step_ms': ..., 'infer_ms': ..., 'flops_per_step': ..., 'gflops_per_s': ..., ...}

Times are medians of `steps` timed calls after `warmup` untimed ones (compilation excluded), on
the first JAX device. `flops_per_step` is XLA's cost analysis of the compiled train step (Adam,
weighted BCE; for impl="fast" counted on the unchunked form, and for remat="iteration" on the
unrolled form, since XLA counts a loop body once). With `floor=True` the matmuls of the train step
(every `dot_general` in its jaxpr, forward and backward) are also timed one by one in isolation
on their own shapes: their summed time is the step's *matmul floor*, and
`flops_per_step / matmul_rate` the FLOP floor. `train_step_memory` gives the train step's
compiled memory (XLA buffer assignment on abstract shapes: nothing is allocated or run).
"""

from __future__ import annotations

import collections
import functools
import statistics
import sys
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import jraph
import numpy as np
import optax

from gnntrack.nn.models import (SegmentClassifier, build_model, count_params, default_model_config,
                                remat_mode)

# ---------------------------------------------------------------------------------------------
# Inputs.


def random_graph(n_nodes: int, n_edges: int, n_node_features: int = 3, n_edge_features: int = 0,
                 seed: int = 0, true_fraction: float = 0.1) -> tuple[jraph.GraphsTuple, np.ndarray]:
    """A random numpy graph (one graph) and random edge labels.

    Returns (graph, y): nodes float32 [N, F]; edges float32 [E, F_e] or None when F_e = 0;
    senders/receivers int32 [E] uniform over nodes; y float32 [E] with ~`true_fraction` ones.
    """
    rng = np.random.default_rng(seed)
    graph = jraph.GraphsTuple(
        nodes=rng.normal(size=(n_nodes, n_node_features)).astype(np.float32),
        edges=(rng.normal(size=(n_edges, n_edge_features)).astype(np.float32)
               if n_edge_features else None),
        senders=rng.integers(0, n_nodes, n_edges, dtype=np.int32),
        receivers=rng.integers(0, n_nodes, n_edges, dtype=np.int32),
        n_node=np.array([n_nodes], np.int32), n_edge=np.array([n_edges], np.int32), globals=None)
    y = (rng.random(n_edges) < true_fraction).astype(np.float32)
    return graph, y


def weighted_bce(logits: jnp.ndarray, labels: jnp.ndarray, mask: jnp.ndarray,
                 pos_weight: float = 1.0) -> jnp.ndarray:
    """Mean binary cross-entropy over real edges (mask 1), true edges weighted by `pos_weight`.

    logits, labels, mask: float [E]. Returns a float32 scalar.
    """
    per_edge = optax.sigmoid_binary_cross_entropy(logits, labels)
    weights = mask * jnp.where(labels > 0.5, pos_weight, 1.0)
    return jnp.sum(weights * per_edge) / jnp.maximum(jnp.sum(mask), 1.0)


# ---------------------------------------------------------------------------------------------
# Steps.


def make_loss_fn(model) -> Callable:
    """loss(params, graph, y, mask) for a model returning per-edge logits."""

    def loss_fn(params, graph, y, mask, pos_weight):
        return weighted_bce(model.apply({"params": params}, graph), y, mask, pos_weight)

    return loss_fn


def make_train_step(model, tx: optax.GradientTransformation, *, donate: bool = True) -> Callable:
    """Jitted `(params, opt_state, graph, y, mask) -> (params, opt_state, loss)` (one Adam step).

    With `donate`, params and optimiser state buffers are reused for the outputs.
    """
    loss_fn = make_loss_fn(model)

    def step(params, opt_state, graph, y, mask, pos_weight=1.0):
        loss, grads = jax.value_and_grad(loss_fn)(params, graph, y, mask, pos_weight)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return jax.jit(step, donate_argnums=(0, 1) if donate else ())


def make_infer_step(model) -> Callable:
    """Jitted `(params, graph) -> edge scores in [0, 1]` float32 [E]."""
    return jax.jit(lambda params, graph: jax.nn.sigmoid(model.apply({"params": params}, graph)))


# ---------------------------------------------------------------------------------------------
# FLOPs and the matmul floor.


def compiled_flops(jitted: Callable, *args) -> float:
    """FLOPs of one call of `jitted(*args)` from XLA's cost analysis of the compiled program."""
    analysis = jitted.lower(*args).compile().cost_analysis()
    if isinstance(analysis, (list, tuple)):  # older JAX returned one dict per partition
        analysis = analysis[0] if analysis else {}
    return float((analysis or {}).get("flops", float("nan")))


def compiled_memory(jitted: Callable, *args) -> dict:
    """Bytes XLA's buffer assignment gives one call of `jitted(*args)` (compile only; args may be
    `jax.ShapeDtypeStruct`s): argument, output, alias (outputs reusing donated arguments), temp
    (intermediates live at the peak) and peak = argument + output - alias + temp."""
    m = jitted.lower(*args).compile().memory_analysis()
    out = dict(argument_bytes=int(m.argument_size_in_bytes),
               output_bytes=int(m.output_size_in_bytes),
               alias_bytes=int(m.alias_size_in_bytes), temp_bytes=int(m.temp_size_in_bytes))
    out["peak_bytes"] = (out["argument_bytes"] + out["output_bytes"] - out["alias_bytes"]
                         + out["temp_bytes"])
    return out


def train_step_memory(model, nodes: int, edges: int, node_features: int = 3,
                      edge_features: int = 0, learning_rate: float = 1e-3) -> dict:
    """`compiled_memory` of the jitted Adam + weighted-BCE train step (`make_train_step`, donated
    params and optimiser state) of `model` on a one-graph input of this size; nothing is
    allocated or run (abstract shapes only)."""
    f32, i32 = jnp.float32, jnp.int32
    sds = jax.ShapeDtypeStruct
    graph = jraph.GraphsTuple(
        nodes=sds((nodes, node_features), f32),
        edges=sds((edges, edge_features), f32) if edge_features else None,
        senders=sds((edges,), i32), receivers=sds((edges,), i32),
        n_node=sds((1,), i32), n_edge=sds((1,), i32), globals=None)
    tx = optax.adam(learning_rate)
    params = jax.eval_shape(model.init, jax.random.key(0), graph)["params"]
    opt_state = jax.eval_shape(tx.init, params)
    labels = sds((edges,), f32)
    return compiled_memory(make_train_step(model, tx, donate=True), params, opt_state, graph,
                           labels, labels)


def _iter_eqns(jaxpr):
    for eqn in jaxpr.eqns:
        yield eqn
        for sub in _subjaxprs(eqn):
            yield from _iter_eqns(sub)


def _subjaxprs(eqn):
    for value in eqn.params.values():
        for v in (value if isinstance(value, (list, tuple)) else [value]):
            if hasattr(v, "jaxpr") and hasattr(v, "consts"):   # ClosedJaxpr
                yield v.jaxpr
            elif hasattr(v, "eqns"):                            # Jaxpr
                yield v


def dot_signatures(fn: Callable, *args) -> collections.Counter:
    """Counter of (lhs shape, rhs shape, dimension_numbers, dtype) over every dot_general that
    `fn(*args)` executes (sub-jaxprs included, forward and backward if `fn` differentiates)."""
    closed = jax.make_jaxpr(fn)(*args)
    counts: collections.Counter = collections.Counter()
    for eqn in _iter_eqns(closed.jaxpr):
        if eqn.primitive.name == "dot_general":
            lhs, rhs = (v.aval for v in eqn.invars)
            dn = eqn.params["dimension_numbers"]
            dn = tuple(tuple(tuple(int(i) for i in part) for part in pair) for pair in dn)
            counts[(tuple(lhs.shape), tuple(rhs.shape), dn, str(lhs.dtype))] += 1
    return counts


def _dot_flops(lhs_shape, rhs_shape, dn) -> float:
    (lc, rc), (lb, rb) = dn
    batch = np.prod([lhs_shape[i] for i in lb]) if lb else 1
    contract = np.prod([lhs_shape[i] for i in lc]) if lc else 1
    lfree = np.prod([d for i, d in enumerate(lhs_shape) if i not in lc and i not in lb])
    rfree = np.prod([d for i, d in enumerate(rhs_shape) if i not in rc and i not in rb])
    return float(2 * batch * contract * lfree * rfree)


def matmul_floor(fn: Callable, *args, repeats: int = 5, cpu_time: bool = False) -> dict:
    """Times every distinct matmul of `fn(*args)` alone (median of `repeats`) on its own shapes.

    Returns dict(dot_flops, dot_seconds (summed over all calls), matmul_gflops_per_s, n_dots).
    """
    counts = dot_signatures(fn, *args)
    total_flops = total_seconds = 0.0
    rng = np.random.default_rng(0)
    for (lhs_shape, rhs_shape, dn, dtype), n in counts.items():
        lhs = jnp.asarray(rng.normal(size=lhs_shape), dtype)
        rhs = jnp.asarray(rng.normal(size=rhs_shape), dtype)
        dot = jax.jit(functools.partial(jax.lax.dot_general, dimension_numbers=dn))
        seconds = median_seconds(lambda: dot(lhs, rhs), warmup=1, steps=repeats, cpu_time=cpu_time)
        total_flops += n * _dot_flops(lhs_shape, rhs_shape, dn)
        total_seconds += n * seconds
    return dict(dot_flops=total_flops, dot_seconds=total_seconds,
                matmul_gflops_per_s=total_flops / max(total_seconds, 1e-12) / 1e9,
                n_dots=int(sum(counts.values())))


def peak_rss_bytes() -> int:
    """This process's peak resident memory. Linux: VmHWM of /proc/self/status, which belongs to
    the current address space; `ru_maxrss` would not do for a subprocess, because Linux keeps it
    across fork + exec, so a child started by a big parent reports at least the parent's RSS."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def median_seconds(call: Callable[[], Any], warmup: int, steps: int, cpu_time: bool = False) -> float:
    """Median seconds per call; `cpu_time` uses this process's CPU time instead of wall-clock
    (robust on a shared machine when XLA runs single-threaded; see scripts/compare_pytorch.py)."""
    clock = time.process_time if cpu_time else time.perf_counter
    for _ in range(warmup):
        jax.block_until_ready(call())
    times = []
    for _ in range(steps):
        start = clock()
        jax.block_until_ready(call())
        times.append(clock() - start)
    return statistics.median(times)


# ---------------------------------------------------------------------------------------------
# The benchmark.


def run_benchmark(model: str = "segment_classifier", *, hidden: int | None = None,
                  n_iters: int | None = None, nodes: int = 20_000, edges: int = 80_000,
                  steps: int = 10, warmup: int = 2, node_features: int = 3,
                  edge_features: int | None = None, model_overrides: dict | None = None,
                  floor: bool = False, seed: int = 0, learning_rate: float = 1e-3) -> dict:
    """Trains and runs inference on one random graph; returns timings and FLOPs (see module doc).

    edge_features defaults to 4 for the interaction network and 0 otherwise.
    """
    config = default_model_config(model)
    if hidden is not None:
        config.hidden = hidden
    if n_iters is not None:
        config.n_iters = n_iters
    for key, value in (model_overrides or {}).items():
        config[key] = value
    net = build_model(config)
    if edge_features is None:
        edge_features = 4 if model == "interaction_network" else 0
    np_graph, np_y = random_graph(nodes, edges, node_features, edge_features, seed)
    device = jax.devices()[0]
    graph, y = jax.device_put((np_graph, np_y), device)
    mask = jnp.ones_like(y)
    params = jax.jit(net.init)(jax.random.key(seed), graph)["params"]
    tx = optax.adam(learning_rate)
    opt_state = tx.init(params)
    n_params = count_params(params)

    train_step = make_train_step(net, tx, donate=True)
    infer = make_infer_step(net)
    # XLA's cost analysis (and a jaxpr walk) counts a loop body once, so FLOPs are counted on
    # the unchunked form of the same arithmetic (the chunked form adds one recomputed forward
    # of each MLP tail, which is not counted).
    # remat="iteration" runs the iterations as a scan, whose body XLA would also count once.
    count_net = net
    if isinstance(net, SegmentClassifier):
        count_net = net.clone(chunk_size=0)
        if remat_mode(net.remat) == "iteration":
            count_net = count_net.clone(remat=False)
    flops = compiled_flops(make_train_step(count_net, tx, donate=False), params, opt_state, graph, y, mask)
    infer_flops = compiled_flops(make_infer_step(count_net), params, graph)

    state = {"params": params, "opt_state": opt_state}

    def one_train_step():
        state["params"], state["opt_state"], loss = train_step(
            state["params"], state["opt_state"], graph, y, mask)
        return loss

    train_s = median_seconds(one_train_step, warmup, steps)
    infer_s = median_seconds(lambda: infer(state["params"], graph), warmup, steps)
    result = dict(
        model=model, hidden=int(config.hidden), n_iters=int(config.n_iters), nodes=nodes,
        edges=edges, params=n_params, steps=steps,
        train_step_ms=1e3 * train_s, infer_ms=1e3 * infer_s,
        flops_per_step=flops, infer_flops=infer_flops,
        gflops_per_s=flops / train_s / 1e9, infer_gflops_per_s=infer_flops / infer_s / 1e9,
        edges_per_s=edges / train_s,
        devices=jax.device_count(), platform=device.platform, device_kind=device.device_kind,
        jax_version=jax.__version__,
        model_config={k: config[k] for k in config.keys()})
    if floor:
        loss_fn = make_loss_fn(count_net)
        grad_fn = lambda p: jax.value_and_grad(loss_fn)(p, graph, y, mask, 1.0)  # noqa: E731
        mm = matmul_floor(grad_fn, state["params"])
        result.update(
            matmul_ms=1e3 * mm["dot_seconds"], matmul_gflops_per_s=mm["matmul_gflops_per_s"],
            dot_flops=mm["dot_flops"], n_dots=mm["n_dots"],
            flop_floor_ms=1e3 * flops / (mm["matmul_gflops_per_s"] * 1e9),
        )
        result["step_over_floor"] = result["train_step_ms"] / result["flop_floor_ms"]
    return result
