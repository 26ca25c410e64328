"""Per-step speed of the models on a random graph: `gnntrack bench` and the scripts/ benchmarks.

    result = run_benchmark("segment_classifier", hidden=64, n_iters=8, nodes=20_000, edges=80_000)
    # {'train_step_ms': ..., 'flops_per_train_step': ..., 'flops_source': 'analytic', ...}

Times are medians of `steps` timed calls after `warmup` untimed ones (compilation excluded), on
the first JAX device. FLOPs: `flops_per_train_step` / `flops_per_inference` are counted
analytically from the model's hyper-parameters and the graph's size (`model_flops`: matmuls and
per-edge sums; `recompute_flops_per_train_step` is the forward work the backward pass repeats by
design), because XLA's cost analysis misses the fused CPU kernels' work; for a model the count
does not know they are XLA's figures (`flops_source` says which). `xla_flops_per_train_step` is
XLA's cost analysis of the compiled train step (Adam, weighted BCE; for impl="fast" on the
unchunked form, and for remat="iteration" on the unrolled form, since XLA counts a loop body
once), for comparison. `gflops_per_s` = train-step FLOPs / step time. With `floor=True` the
matmuls of the train step (every `dot_general` in its jaxpr, forward and backward) are also timed
one by one in isolation on their own shapes: their summed time is the step's *matmul floor*, and
`flops_per_train_step / matmul_rate` the FLOP floor. `train_step_memory` gives the train step's
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
import ml_collections
import numpy as np
import optax

from gnntrack.graphs.batching import DeviceBatch

from gnntrack.nn.fast.segment_classifier import (PROJECTED_MESSAGES, FastSegmentClassifier,
                                                 default_chunk_size, remat_mode)
from gnntrack.nn.models import (InteractionNetwork, SegmentClassifier, build_model, count_params,
                                default_model_config)
from gnntrack.nn.registry import get_message
from gnntrack.train.losses import default_loss_config
from gnntrack.train.parallel import DEFAULT_AXIS, DataParallel
from gnntrack.train.state import TrainState
from gnntrack.train.step import make_train_step as engine_train_step

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
    """The engine's train step on the first device, as a jitted
    `(params, opt_state, graph, y, mask) -> (params, opt_state, loss)`.

    It is `gnntrack.train.step.make_train_step` (weighted BCE over the real edges, gradient
    telemetry, the optax update) run by the data-parallel wrapper on one device: the function
    `gnntrack train` steps with, so a benchmark times the engine's own step. `mask` float [E]
    (1 = real edge); with `donate`, params and optimiser-state buffers are reused for the outputs.
    """
    dp = DataParallel(ml_collections.ConfigDict(dict(mode="shard_map", n_devices=1, axis_name=DEFAULT_AXIS)))
    per_device = engine_train_step(model, tx, default_loss_config(), dp.axis_name)
    parallel = dp.train_step(per_device, donate_state=False).jitted  # the jit below donates

    def step(params, opt_state, graph, y, mask):
        state = TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=opt_state,
                           rng=jax.random.PRNGKey(0))
        n_node, n_graph = graph.nodes.shape[0], graph.n_node.shape[0]
        batch = DeviceBatch(graph=jax.tree_util.tree_map(lambda x: x[None], graph), y=y[None],
                            edge_mask=(mask > 0)[None], node_mask=jnp.ones((1, n_node), bool),
                            graph_mask=jnp.ones((1, n_graph), bool))
        new_state, metrics = parallel(state, batch)
        return new_state.params, new_state.opt_state, metrics["loss"]

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



# ---------------------------------------------------------------------------------------------
# Analytic FLOPs.
#
# XLA's cost analysis sees only XLA ops: the fused CPU kernels (custom calls) count zero, and a
# loop body (row blocks, remat="iteration") counts once. So the built-in models' FLOPs are
# counted from their structure instead. What is counted: matmuls, 2·m·k·n each, and the per-edge
# sums (message aggregation, the sums of gathered first-layer tables, and the scatter-adds that
# are the gradients of gathers), 1 FLOP per add and per multiply. Elementwise work (bias adds,
# LayerNorm, activations, sigmoid, residual adds, loss, Adam) is excluded: it is small next to
# the matmuls, and its count depends on the formulation (XLA's cost analysis counts one FLOP per
# element and op, transcendental functions apart). A matmul's backward pass is two matmuls of the
# same size (input and kernel gradient), one where the input is data (no input gradient needed).

FLOPS_COUNTED = ("matmuls (2*m*k*n) and per-edge sums (messages, gathered-table sums, "
                 "gather gradients); elementwise ops excluded")
PHASES = ("forward", "backward", "recompute")


def _flops(phase: str, kind: str, value: float) -> collections.Counter:
    return collections.Counter({(phase, kind): float(value)})


def _dense(rows: int, k: int, n: int, input_grad: bool = True) -> collections.Counter:
    """x [rows, k] · W [k, n]: forward; backward = kernel gradient (+ input gradient)."""
    flops = 2.0 * rows * k * n
    return _flops("forward", "matmul", flops) + _flops("backward", "matmul",
                                                       flops * (2 if input_grad else 1))


def _sums(forward: float, backward: float) -> collections.Counter:
    return _flops("forward", "sums", forward) + _flops("backward", "sums", backward)


def _times(count: collections.Counter, n: int) -> collections.Counter:
    return collections.Counter({key: value * n for key, value in count.items()})


def _recomputed(count: collections.Counter) -> collections.Counter:
    """The forward part of `count`, as work the backward pass repeats."""
    return collections.Counter({("recompute", kind): value
                                for (phase, kind), value in count.items() if phase == "forward"})


def message_flops(name: str, nodes: int, edges: int, width: int, edge_width: int,
                  x_grad: bool = True) -> tuple[collections.Counter, int]:
    """(FLOPs, output width) of message `name` on x [nodes, width], e [edges, edge_width].

    Built-in messages are counted from their sums: a weighted sum over E edges of width W is
    2·E·W forward (multiply, add) and 4·E·W backward (scatter of w·g, and dw = Σ g·x); a plain
    sum of per-edge values is E·W forward and free backward (a gather). Other registered
    messages are counted from their jaxpr (`jaxpr_flops`, which also sees the graph-op kernels
    of `gnntrack.nn.cpu_kernels` that XLA's cost analysis counts as zero).
    """
    n, e, d, k = nodes, edges, width, edge_width
    if name == "bidirectional_weighted_sum":
        return _sums(4 * e * d, 8 * e * d), 2 * d
    if name == "weighted_sum_in":
        return _sums(2 * e * d, 4 * e * d), d
    if name == "bidirectional_weighted_mean":  # + the two weight sums
        return _sums(4 * e * d + 2 * e, 8 * e * d + 2 * e), 2 * d
    if name == "sum_incoming":
        return _sums(e * k, 0), k
    if name == "sum_bidirectional":  # d e = g[r] + g[s]
        return _sums(2 * e * k, e * k), 2 * k
    return _jaxpr_message_flops(name, n, e, d, k, x_grad)


# Float ops a jaxpr walk counts at one FLOP per output element (reductions: per input element).
_ELEMENTWISE = frozenset({"add", "add_any", "sub", "mul", "div", "neg", "max", "min", "abs",
                          "exp", "exp2", "log", "log1p", "expm1", "tanh", "logistic", "sqrt",
                          "rsqrt", "pow", "integer_pow", "square", "sign"})
_REDUCTIONS = frozenset({"reduce_sum", "reduce_max", "reduce_min", "argmax", "argmin"})


def _kernel_flops(eqn) -> float:
    """FLOPs of one call of the graph-op kernels (gnntrack.nn.cpu_kernels) a message may use."""
    target = eqn.params.get("target_name", eqn.params.get("call_target_name", ""))
    shapes = [tuple(v.aval.shape) for v in eqn.invars]
    if target == "gnntrack_segment_gather_sum":  # table [T, H], rows [E], coef [E] or [0], ptr
        (_, width), (edges,), (coefs,) = shapes[0], shapes[1], shapes[2]
        return float(edges * width * (2 if coefs else 1))
    if target == "gnntrack_row_dots":             # a [Ta, H], ia [E], b [Tb, H], ib [E]
        return float(2 * shapes[1][0] * shapes[0][1])
    return 0.0                                    # segment_order: integers only


def jaxpr_flops(closed_jaxpr) -> float:
    """FLOPs of a jaxpr, op by op: dot_general 2·m·k·n, float elementwise ops and scatter-adds
    one per element, reductions one per input element, the graph-op kernels from their shapes;
    a scan body counts `length` times (gathers, layout ops and integer ops count 0)."""
    total = 0.0
    for eqn in closed_jaxpr.eqns:
        name = eqn.primitive.name
        out = eqn.outvars[0].aval if eqn.outvars else None
        floating = out is not None and jnp.issubdtype(getattr(out, "dtype", jnp.int32), jnp.floating)
        if name == "dot_general":
            lhs, rhs = (v.aval.shape for v in eqn.invars)
            total += _dot_flops(lhs, rhs, eqn.params["dimension_numbers"])
        elif name in _ELEMENTWISE and floating:
            total += float(np.prod(out.shape))
        elif name in _REDUCTIONS and floating:
            total += float(np.prod(eqn.invars[0].aval.shape))
        elif name == "scatter-add" and floating:
            total += float(np.prod(eqn.invars[2].aval.shape))
        elif name == "ffi_call":
            total += _kernel_flops(eqn)
        for sub in _subjaxprs(eqn):
            total += jaxpr_flops(sub) * (eqn.params["length"] if name == "scan" else 1)
    return total


def _jaxpr_message_flops(name, nodes, edges, width, edge_width, x_grad):
    """A registered message counted from its jaxpr (forward) and its VJP's jaxpr less the
    forward (the VJP's trace holds the forward pass once)."""
    fn = get_message(name)
    sds, f32, i32 = jax.ShapeDtypeStruct, jnp.float32, jnp.int32
    x, e = sds((nodes, width), f32), sds((edges, edge_width), f32)
    index = sds((edges,), i32)
    out = jax.eval_shape(fn, x, e, index, index)

    def backward(x, e, senders, receivers, g):
        if x_grad:
            return jax.vjp(lambda x, e: fn(x, e, senders, receivers), x, e)[1](g)
        return jax.vjp(lambda e: fn(x, e, senders, receivers), e)[1](g)

    forward = jaxpr_flops(jax.make_jaxpr(fn)(x, e, index, index).jaxpr)
    both = jaxpr_flops(jax.make_jaxpr(backward)(x, e, index, index, out).jaxpr)
    return _sums(forward, both - forward), int(out.shape[-1])


def _segment_classifier_flops(m: SegmentClassifier, nodes: int, edges: int, node_features: int,
                              edge_features: int) -> tuple[collections.Counter, str]:
    """FLOPs of the segment classifier's forward, backward and recomputation; its form's name."""
    n, e, h, f = nodes, edges, m.hidden, node_features
    d = h + f
    fe = edge_features if m.use_edge_features else 0
    fast = isinstance(m, FastSegmentClassifier)  # else the reference: no knobs
    project = fast and m.project
    fused_norm = fast and m.fused_norm
    chunk = (default_chunk_size() if m.chunk_size is None else m.chunk_size) if fused_norm else 0
    kernels = fast and m.resolved_cpu_kernels() == "fused"
    remat = remat_mode(m.remat) if fast else "none"
    projected = project and m.message in PROJECTED_MESSAGES

    # Edge network, one call: first layer, the layers the row blocks / kernels run, output layer.
    if project:
        edge_first = _times(_dense(n, d, h), 2) + (_dense(e, fe, h, input_grad=False) if fe
                                                   else collections.Counter())
        # Σ of the gathered tables (+ projected edge features); backward: two segment sums.
        edge_tail = _sums(e * h * (2 if fe else 1), 2 * e * h)
    else:  # [x_src, x_dst (, edges)] · K; backward also scatters the gathered rows' gradients
        edge_first = _dense(e, 2 * d + fe, h) + _sums(0, 2 * e * d)
        edge_tail = collections.Counter()
    edge_tail += _times(_dense(e, h, h), m.edge_layers - 1)
    edge_out = _dense(e, h, 1)
    # Node network, one call; the message sits inside its first layer when projected.
    if projected:
        message = collections.Counter()
        node_first = _times(_dense(n, d, h), 3) + _sums(4 * e * h, 8 * e * h)
    else:
        message, width = message_flops(m.message, n, e, d, 1)
        node_first = _dense(n, width + d, h)
    node_tail = _times(_dense(n, h, h), m.node_layers - 1)

    edge_call = edge_first + edge_tail + edge_out
    iteration = edge_call + message + node_first + node_tail
    total = _dense(n, f, h, input_grad=False) + _times(iteration, m.n_iters) + edge_call
    # Work the backward pass repeats by design.
    if kernels:  # the kernels' backward recomputes each tile's forward (not the logit layer)
        total += _times(_recomputed(edge_tail), m.n_iters + 1)
        total += _times(_recomputed(node_tail), m.n_iters)
    elif chunk:  # row blocks under jax.checkpoint: everything after the first matmul
        if e > chunk:
            total += _times(_recomputed(edge_tail + edge_out), m.n_iters + 1)
        if n > chunk:
            total += _times(_recomputed(node_tail), m.n_iters)
    if remat == "mlp":  # whole networks (the shared first-layer matmul stays outside them)
        none = collections.Counter()
        total += _times(_recomputed(edge_tail + edge_out + (none if kernels else edge_first)),
                        m.n_iters + 1)
        total += _times(_recomputed(node_tail + (none if kernels else node_first)), m.n_iters)
    elif remat == "iteration":
        total += _times(_recomputed(iteration), m.n_iters)
    form = "fast, fused CPU kernels" if kernels else ("fast" if fast else "reference")
    return total, form


def _interaction_network_flops(m: InteractionNetwork, nodes: int, edges: int,
                               node_features: int, edge_features: int
                               ) -> tuple[collections.Counter, str]:
    """FLOPs of the interaction network's forward and backward (plain XLA: no recomputation)."""
    n, e, h = nodes, edges, m.hidden
    dx, de = node_features, edge_features
    total = collections.Counter()

    def edge_mlp(out_width, dx, de, grad):  # on [x_src, x_dst, e]; grad: inputs carry gradients
        return (_dense(e, 2 * dx + de, h, input_grad=grad)
                + _times(_dense(e, h, h), m.relational_layers - 1) + _dense(e, h, out_width)
                + _sums(0, 2 * e * dx if grad else 0))

    for i in range(m.n_iters):
        grad = i > 0  # the first round reads the data only
        total += edge_mlp(m.edge_out, dx, de, grad)
        message, width = message_flops(m.message, n, e, dx, m.edge_out, x_grad=grad)
        total += message
        total += (_dense(n, dx + width, h) + _times(_dense(n, h, h), m.object_layers - 1)
                  + _dense(n, h, m.node_out))
        dx, de = m.node_out, m.edge_out
    total += edge_mlp(1, dx, de, m.n_iters > 0)
    return total, "reference"


def model_flops(model, nodes: int, edges: int, node_features: int = 3,
                edge_features: int = 0) -> dict | None:
    """FLOPs of `model` (a built Flax module) on one graph of `nodes` nodes and `edges` edges,
    counted from its hyper-parameters (see FLOPS_COUNTED); None for a model this does not know.

    Returns dict(forward (= one inference), backward, train_step = forward + backward: the
    model's FLOPs; recompute: forward work the backward pass repeats by design -- the fused
    kernels' tiles, checkpointed row blocks, remat (as the program asks for it: with
    remat="mlp", XLA:CPU may fold part of it back into the forward pass); executed =
    train_step + recompute;
    by_kind {phase: {matmul, sums}}; form: the arithmetic counted, "reference" | "fast" |
    "fast, fused CPU kernels" -- the kernels do the fast form's arithmetic, so the model FLOPs
    are equal with them on or off, only the recomputation differs; counted: FLOPS_COUNTED).
    """
    if isinstance(model, SegmentClassifier):
        count, form = _segment_classifier_flops(model, nodes, edges, node_features, edge_features)
    elif isinstance(model, InteractionNetwork):
        count, form = _interaction_network_flops(model, nodes, edges, node_features, edge_features)
    else:
        return None
    phases = {p: sum(v for (phase, _), v in count.items() if phase == p) for p in PHASES}
    return dict(**phases, train_step=phases["forward"] + phases["backward"],
                executed=phases["forward"] + phases["backward"] + phases["recompute"],
                by_kind={p: {kind: v for (phase, kind), v in sorted(count.items()) if phase == p}
                         for p in PHASES},
                form=form, counted=FLOPS_COUNTED)


def flop_summary(counted: dict | None, xla_train: float, xla_infer: float) -> dict:
    """The FLOP figures `gnntrack bench` reports: the analytic count `counted` (`model_flops`)
    where there is one, else XLA's cost analysis (flops_source "xla_cost_analysis", which
    misses work done in FFI kernels); XLA's own figures ride beside it for comparison."""
    out = dict(xla_flops_per_train_step=xla_train, xla_flops_per_inference=xla_infer)
    if counted is None:
        return dict(flops_per_train_step=xla_train, flops_per_inference=xla_infer,
                    recompute_flops_per_train_step=None, executed_flops_per_train_step=xla_train,
                    flops_source="xla_cost_analysis", flops_form="as compiled",
                    flops_counted="XLA cost analysis of the compiled step (FFI kernels count 0)",
                    **out)
    return dict(flops_per_train_step=counted["train_step"], flops_per_inference=counted["forward"],
                recompute_flops_per_train_step=counted["recompute"],
                executed_flops_per_train_step=counted["executed"], flops_source="analytic",
                flops_form=counted["form"], flops_counted=counted["counted"],
                flops_by_kind=counted["by_kind"], **out)


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
    # XLA's cost analysis (and a jaxpr walk) counts a loop body once, so its figure is taken on
    # the unchunked form of the same arithmetic, and remat="iteration" (a scan) unrolled; it
    # still misses the fused kernels' work, hence the analytic count (model_flops) where known.
    count_net = net
    if isinstance(net, FastSegmentClassifier):
        count_net = net.clone(chunk_size=0)
        if remat_mode(net.remat) == "iteration":
            count_net = count_net.clone(remat=False)
    xla_flops = compiled_flops(make_train_step(count_net, tx, donate=False), params, opt_state,
                               graph, y, mask)
    xla_infer_flops = compiled_flops(make_infer_step(count_net), params, graph)
    counted = model_flops(net, nodes, edges, node_features, edge_features)
    flops = flop_summary(counted, xla_flops, xla_infer_flops)

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
        train_step_ms=1e3 * train_s, infer_ms=1e3 * infer_s, **flops,
        gflops_per_s=flops["flops_per_train_step"] / train_s / 1e9,
        executed_gflops_per_s=flops["executed_flops_per_train_step"] / train_s / 1e9,
        xla_gflops_per_s=xla_flops / train_s / 1e9,
        infer_gflops_per_s=flops["flops_per_inference"] / infer_s / 1e9,
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
            flop_floor_ms=1e3 * flops["flops_per_train_step"] / (mm["matmul_gflops_per_s"] * 1e9),
        )
        result["step_over_floor"] = result["train_step_ms"] / result["flop_floor_ms"]
    return result
