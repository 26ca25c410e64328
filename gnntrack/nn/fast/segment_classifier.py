"""The segment classifier's fast form: `FastSegmentClassifier`, the same function as the reference
`gnntrack.nn.segment_classifier.SegmentClassifier` with the same parameter tree (checkpoints are
interchangeable; equal up to float rounding, tested), computed faster.

`model.impl = "fast"` (the config default) builds it; its knobs (`cpu_kernels`, `remat`,
`chunk_size`, and `fused_norm` / `project` for benchmarks) belong to this form only.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import jraph

from gnntrack.errors import ConfigError
from gnntrack.nn import cpu_kernels, ops
from gnntrack.nn.layers import MLP, gather_rows, get_dtype
from gnntrack.nn.registry import get_message
from gnntrack.nn.segment_classifier import SegmentClassifier

__all__ = ["FastSegmentClassifier", "cpu_kernels_label", "default_chunk_size", "remat_mode",
           "resolve_cpu_kernels", "weighted_bidirectional_sum"]
EDGE_CHUNK = 2048  # rows per cache-resident block (see layers.MLP.chunk_size)
CPU_KERNEL_CHOICES = ("auto", "xla", "fused")  # model.cpu_kernels; see resolve_cpu_kernels
# model.remat values: False/"none" -> off; True/"mlp" -> per network (the original boolean);
# "iteration" -> per message-passing iteration (see FastSegmentClassifier).
REMAT_MODES = ("none", "mlp", "iteration")


def default_chunk_size(backend: str | None = None) -> int:
    """Row-block size the fast form uses by default on `backend` (default: JAX's default backend).

    The blocks exist to keep each block's activations in a CPU core's cache; on a GPU or TPU a
    sequential loop over small blocks would only serialise work the device runs in parallel, so
    there the networks run unchunked (0).
    """
    return EDGE_CHUNK if (backend or jax.default_backend()) == "cpu" else 0


def resolve_cpu_kernels(choice: str, *, fast: bool, hidden: int, activation: str,
                        layer_norm: bool, compute_dtype: str, backend: str | None = None) -> str:
    """"fused" or "xla": whether the segment classifier's edge and node networks run their
    forward passes in the hand-written CPU kernels (`gnntrack.nn.cpu_kernels`, compiled on first
    use) or in XLA.

    The kernels need the fast form (`fused_norm` and `project` on), tanh + LayerNorm, float32, a hidden width in
    `cpu_kernels.MLP_WIDTHS` and the CPU backend. `choice` "auto" picks "fused"
    whenever that holds and the kernels build here; "xla" never does; "fused" raises ConfigError,
    naming the reason, where they cannot run.
    """
    if choice not in CPU_KERNEL_CHOICES:
        raise ConfigError(f"unknown model.cpu_kernels {choice!r}; "
                          f"available: {', '.join(CPU_KERNEL_CHOICES)}")
    if choice == "xla":
        return "xla"
    backend = backend or jax.default_backend()
    reasons = [why for bad, why in [
        (not fast, "needs model.impl='fast'"),
        (hidden not in cpu_kernels.MLP_WIDTHS, f"model.hidden must be one of {cpu_kernels.MLP_WIDTHS}"),
        (activation != "tanh", "needs model.activation='tanh'"),
        (not layer_norm, "needs model.layer_norm=True"),
        (compute_dtype != "float32", "needs model.compute_dtype='float32'"),
        (backend != "cpu", f"runs on the CPU backend only (this is {backend!r})"),
    ] if bad]
    if not reasons and not cpu_kernels.available():
        reasons.append(cpu_kernels.status().detail)
    if not reasons:
        return "fused"
    if choice == "fused":
        raise ConfigError("model.cpu_kernels='fused' is not possible here: " + "; ".join(reasons))
    return "xla"


def cpu_kernels_label(model: nn.Module) -> str:
    """Run provenance: whether `model` runs the fused CPU kernels here, e.g.
    'fused (c++ 12.2.0, AVX2+FMA)', or 'xla'."""
    if not hasattr(model, "resolved_cpu_kernels") or model.resolved_cpu_kernels() == "xla":
        return "xla"
    return cpu_kernels.status().label()


def remat_mode(value) -> str:
    """The canonical `model.remat` mode ("none" | "mlp" | "iteration") of a config value."""
    if value is False or value is None:
        return "none"
    if value is True:
        return "mlp"
    if isinstance(value, str) and value in REMAT_MODES:
        return value
    raise ConfigError(f"bad value {value!r} for config key 'model.remat'; use false, true or "
                      f"one of {', '.join(repr(m) for m in REMAT_MODES)} (true = 'mlp')")



class FastSegmentClassifier(SegmentClassifier):
    """`SegmentClassifier`'s function and parameter tree, computed faster (within float rounding;
    tests/nn/test_fast.py, tests/nn/test_cpu_kernels.py):
      * `project`: the edge network's first layer is applied per node before the gather,
        (x·K_src)[senders] + (x·K_dst)[receivers], instead of on the [E, 2D] concatenation, and
        the gathers happen inside the row blocks below (no [E, H] array is materialised); the
        node network's first layer takes its inputs without concatenating them and, for
        messages linear in x (the default), projects before aggregating:
        Σ_in w·(x·K_in)[src] instead of (Σ_in w·x[src])·K_in;
      * `fused_norm`: LayerNorm + tanh use a hand-written backward pass (`layers.norm_act`);
      * `chunk_size` (None: `default_chunk_size()`, blocks on CPU only): everything after each
        MLP's first matmul runs over row blocks under `jax.checkpoint` (cache-resident;
        recomputed in the backward pass, not stored);
      * `cpu_kernels` ("auto" | "xla" | "fused"): on CPU, the edge network (gather -> every
        layer -> logit) and the node network's layers after its first matmul, forward and
        backward, run in hand-written fused kernels (`resolve_cpu_kernels`; "auto" does when
        they build here). With them, the message's gathers and sums also run in kernels (edges
        grouped by node: `weighted_bidirectional_sum`), and both networks' first layers, which
        read the same x, run as one matmul per iteration.
    `fused_norm` / `project` / `chunk_size` switch these off one by one (benchmarks).

    `remat` (rematerialisation; same parameters, same function, less memory, more compute):
      * False / "none": off.
      * True / "mlp": recompute whole edge/node networks in the backward pass (nn.remat of the
        MLPs). On CPU this does not lower XLA's peak temp memory for this model: in
        straight-line code XLA:CPU's scheduler is free to run a recomputation as soon as its
        inputs exist, long before the backward pass needs it.
      * "iteration": recompute each whole message-passing iteration (edge network -> weights ->
        message -> node network) in the backward pass. The iterations run as a Flax-lifted
        `nn.scan` (parameters broadcast, networks passed in, so the parameter tree is unchanged)
        of an `nn.remat` body: only the node state x [N, hidden + F] entering each iteration is
        kept, and each iteration is recomputed *inside* the backward loop, where no scheduler can
        hoist it: peak memory ~ one iteration's activations instead of `n_iters` of them, for
        about one extra forward pass of compute (scripts/remat_memory.py measures it).
    """

    remat: bool | str = False        # see REMAT_MODES
    fused_norm: bool = True
    project: bool = True
    chunk_size: int | None = None    # None: default_chunk_size()
    cpu_kernels: str = "auto"        # see resolve_cpu_kernels

    def resolved_cpu_kernels(self) -> str:
        """"fused" or "xla": what `cpu_kernels` means for this model here (resolve_cpu_kernels)."""
        return resolve_cpu_kernels(
            self.cpu_kernels, fast=self.fused_norm and self.project, hidden=self.hidden,
            activation=self.activation, layer_norm=self.layer_norm,
            compute_dtype=self.compute_dtype)

    @nn.compact
    def __call__(self, graph: jraph.GraphsTuple, train: bool = False) -> jnp.ndarray:
        del train  # no dropout / batch statistics
        fused, project = self.fused_norm, self.project
        chunk = default_chunk_size() if self.chunk_size is None else self.chunk_size
        dtype = get_dtype(self.compute_dtype)
        remat = remat_mode(self.remat)
        mlp = nn.remat(MLP, static_argnums=(2, 3)) if remat == "mlp" else MLP
        common = dict(activation=self.activation, layer_norm=self.layer_norm, dtype=dtype,
                      fused_norm=fused, chunk_size=chunk if fused else 0)
        input_net = MLP([self.hidden], final_activation=True, name="input_net", **common)
        kernels = self.resolved_cpu_kernels()
        edge_net = mlp([self.hidden] * self.edge_layers + [1], final_activation=False,
                       name="edge_net", cpu_kernel=kernels, **common)
        node_net = mlp([self.hidden] * self.node_layers, final_activation=True, name="node_net",
                       cpu_kernel=kernels, **common)
        # the message's ops (gnntrack.nn.ops) follow the same choice as the networks
        message = ops.with_kernels(get_message(self.message), kernels == "fused")
        senders, receivers = graph.senders, graph.receivers
        raw = graph.nodes.astype(dtype)
        edges = graph.edges.astype(dtype) if self.use_edge_features else None
        projected = FUSED_PROJECTED_MESSAGES if kernels == "fused" else PROJECTED_MESSAGES
        projected_message = projected.get(self.message) if project else None
        edge_mode = "project" if project else "concat"
        node_mode = "split" if fused or project else "concat"

        # With the fused kernels, both networks' first layers (edge: x·K_src, x·K_dst; node:
        # x·K_in, x·K_out, x·K_x) read the same x: run them as one [D, 5H] matmul per iteration
        # (and their gradients as two), which is faster than fifteen small ones.
        # The kernels are read from the parameter tree, so the tree is unchanged; at init the
        # networks create them as usual.
        table_message = TABLE_MESSAGES.get(self.message) if kernels == "fused" else None
        share_first_layers = (table_message is not None and project
                              and not self.is_initializing())

        def first_layer_tables(module, x, n_blocks):
            """x · [K_src | K_dst | K_in | K_out | K_x][:n_blocks] -> n_blocks tables [N, H]."""
            params, d = module.variables["params"], x.shape[-1]
            k_edge = params["edge_net"]["dense_0"]["kernel"].astype(dtype)
            k_node = params["node_net"]["dense_0"]["kernel"].astype(dtype)
            blocks = [k_edge[:d], k_edge[d:2 * d], k_node[:d], k_node[d:2 * d], k_node[2 * d:]]
            return jnp.split(x @ jnp.concatenate(blocks[:n_blocks], axis=1), n_blocks, axis=1)

        # The networks are arguments (not closed over) so that a lifted transform of `iteration`
        # re-binds them to its own scope; their parameters stay at the top level either way.
        def edge_logits(edge_net, x, senders, receivers, edges, tables=None):
            extra = [(edges, None)] if edges is not None else []
            if tables is not None:  # (x·K_src, x·K_dst), projected by the caller
                def given(blocks):  # blocks: K_src, K_dst (, K_edge)
                    terms = [(tables[0], senders), (tables[1], receivers)]
                    return terms + [(edges @ blocks[2], None)] if edges is not None else terms

                return edge_net([(x, senders), (x, receivers)] + extra, "project_terms",
                                given)[:, 0]
            return edge_net([(x, senders), (x, receivers)] + extra, edge_mode, None)[:, 0]

        def node_update(node_net, x, w, senders, receivers, tables=None):
            if tables is not None:  # (x·K_in, x·K_out, x·K_x), projected by the caller
                def given(blocks):
                    return table_message(tables[0], tables[1], w, senders, receivers) + tables[2]

                return node_net([(x, None)] * 3, node_mode, given)
            if projected_message is None:
                m = message(x, w[:, None], senders, receivers)
                return node_net([(m, None), (x, None)], node_mode, None)

            def combine(blocks):  # blocks: K_in, K_out, K_x (rows of the [3D, H] kernel)
                k_in, k_out, k_x = blocks
                return projected_message(x, w, senders, receivers, k_in, k_out) + x @ k_x

            return node_net([(x, None)] * 3, node_mode, combine)

        def iteration(module, edge_net, node_net, x, raw, senders, receivers, edges):
            # module: this module, or a lifted transform's handle on its scope
            tables = first_layer_tables(module, x, 5) if share_first_layers else None
            w = jax.nn.sigmoid(edge_logits(edge_net, x, senders, receivers, edges,
                                           None if tables is None else tables[:2]))
            update = node_update(node_net, x, w, senders, receivers,
                                 None if tables is None else tables[2:])
            return jnp.concatenate([update, raw], axis=-1) + x

        x = jnp.concatenate([input_net([(raw, None)]), raw], axis=-1)
        if remat == "iteration" and self.n_iters > 0:
            def step(module, x, edge_net, node_net, raw, senders, receivers, edges):
                x = iteration(module, edge_net, node_net, x, raw, senders, receivers, edges)
                return x, None

            scan = nn.scan(nn.remat(step, prevent_cse=False), variable_broadcast="params",
                           split_rngs={"params": False}, in_axes=nn.broadcast,
                           length=self.n_iters)
            x, _ = scan(self, x, edge_net, node_net, raw, senders, receivers, edges)
        else:
            for _ in range(self.n_iters):
                x = iteration(self, edge_net, node_net, x, raw, senders, receivers, edges)
        final = first_layer_tables(self, x, 2) if share_first_layers else None
        return edge_logits(edge_net, x, senders, receivers, edges, final).astype(jnp.float32)


def _projected_bidirectional_weighted_sum(x, w, senders, receivers, k_in, k_out):
    """bidirectional_weighted_sum(x, w)·[K_in; K_out] computed as Σ_in w·(x·K_in)[src] +
    Σ_out w·(x·K_out)[dst]: two [N, D]×[D, H] matmuls, then width-H gathers and sums."""
    n = x.shape[0]
    w = w[:, None].astype(x.dtype)
    incoming = jax.ops.segment_sum(w * gather_rows(x @ k_in, senders), receivers, num_segments=n)
    outgoing = jax.ops.segment_sum(w * gather_rows(x @ k_out, receivers), senders, num_segments=n)
    return incoming + outgoing


def _fused_projected_bidirectional_weighted_sum(x, w, senders, receivers, k_in, k_out):
    """`_projected_bidirectional_weighted_sum` with the gathers, weights and sums in the CPU
    kernels (`cpu_kernels.segment_gather_sum` over edges grouped by node, forward and backward;
    `weighted_bidirectional_sum`); the two projections stay XLA matmuls."""
    return weighted_bidirectional_sum(x @ k_in, x @ k_out, w, senders, receivers)


@jax.custom_vjp
def weighted_bidirectional_sum(p_in, p_out, w, senders, receivers):
    """out [N, H] = Σ_{e: r_e = n} w_e·p_in[s_e] + Σ_{e: s_e = n} w_e·p_out[r_e], by the fused
    CPU kernels. p_in, p_out float32 [N, H]; w float32 [E]; senders, receivers int32 [E].

    Segment sums in XLA:CPU are scatters into which the per-edge products get fused; here the
    edges are grouped by receiver and by sender once (a counting sort, O(E)) and every sum becomes
    a gather that one thread owns per node, in edge order: deterministic, within float rounding
    of XLA's result.
    """
    return _weighted_bidirectional_sum_fwd(p_in, p_out, w, senders, receivers)[0]


def _edge_groups(senders, receivers, n):
    by_receiver = cpu_kernels.segment_order(receivers, n)
    by_sender = cpu_kernels.segment_order(senders, n)
    return by_receiver, by_sender


def _weighted_bidirectional_sum_fwd(p_in, p_out, w, senders, receivers):
    w = jnp.asarray(w, jnp.float32)
    senders, receivers = jnp.asarray(senders, jnp.int32), jnp.asarray(receivers, jnp.int32)
    (perm_r, ptr_r), (perm_s, ptr_s) = _edge_groups(senders, receivers, p_in.shape[0])
    senders_by_r, w_by_r = senders[perm_r], w[perm_r]
    receivers_by_s, w_by_s = receivers[perm_s], w[perm_s]
    out = (cpu_kernels.segment_gather_sum(p_in, senders_by_r, w_by_r, ptr_r)
           + cpu_kernels.segment_gather_sum(p_out, receivers_by_s, w_by_s, ptr_s))
    groups = (senders_by_r, w_by_r, ptr_r, receivers_by_s, w_by_s, ptr_s)
    return out, (p_in, p_out, senders, receivers, groups)


def _weighted_bidirectional_sum_bwd(residuals, g):
    p_in, p_out, senders, receivers, groups = residuals
    senders_by_r, w_by_r, ptr_r, receivers_by_s, w_by_s, ptr_s = groups
    g = g.astype(jnp.float32)
    # d p_in[m] = Σ_{e: s_e = m} w_e·g[r_e]; d p_out[m] = Σ_{e: r_e = m} w_e·g[s_e].
    d_in = cpu_kernels.segment_gather_sum(g, receivers_by_s, w_by_s, ptr_s)
    d_out = cpu_kernels.segment_gather_sum(g, senders_by_r, w_by_r, ptr_r)
    d_w = (cpu_kernels.row_dots(g, receivers, p_in, senders)
           + cpu_kernels.row_dots(g, senders, p_out, receivers))
    return d_in, d_out, d_w, None, None


weighted_bidirectional_sum.defvjp(_weighted_bidirectional_sum_fwd, _weighted_bidirectional_sum_bwd)


# Messages that are linear in x, with their project-before-aggregate form (`project`).
PROJECTED_MESSAGES = {"bidirectional_weighted_sum": _projected_bidirectional_weighted_sum}
# ... and that form in the fused CPU kernels (model.cpu_kernels = "fused"), given x and the
# kernels, or given the projected tables f(x·K_in, x·K_out, w, senders, receivers).
FUSED_PROJECTED_MESSAGES = {"bidirectional_weighted_sum": _fused_projected_bidirectional_weighted_sum}
TABLE_MESSAGES = {"bidirectional_weighted_sum": weighted_bidirectional_sum}
