"""Small Flax Linen building blocks: activations, a dense layer over several inputs, an MLP.

`ConcatDense` is the one non-standard piece: it owns a single kernel `[ΣD_i, F]` for inputs that
the reference formulation concatenates (`[x_src, x_dst]`, `[m_in, m_out, x]`), and can also apply
it *without* materialising the concatenation, as Σ_i x_i · K_i, or with the projection done per
node before a gather (`(x · K_src)[senders]` instead of `x[senders] · K_src`). Both forms use the
same parameters, so the fast model variants load the reference model's checkpoints unchanged.
"""

from __future__ import annotations

import functools
from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from gnntrack._compat import vary_like
from gnntrack.errors import ConfigError

ACTIVATIONS: dict[str, Callable[[jnp.ndarray], jnp.ndarray]] = {
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "gelu": jax.nn.gelu,
    "silu": jax.nn.silu,
    "identity": lambda x: x,
}

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def get_activation(name: str) -> Callable[[jnp.ndarray], jnp.ndarray]:
    if name not in ACTIVATIONS:
        raise ConfigError(f"unknown activation {name!r} (config key 'model.activation'); "
                          f"available: {', '.join(sorted(ACTIVATIONS))}")
    return ACTIVATIONS[name]


def get_dtype(name: str):
    if name not in DTYPES:
        raise ConfigError(f"unknown compute dtype {name!r} (config key 'model.compute_dtype'); "
                          f"available: {', '.join(DTYPES)}")
    return DTYPES[name]


class ConcatDense(nn.Module):
    """Dense layer on the concatenation of several inputs, with one kernel `[ΣD_i, features]`.

    Call with `parts = [(array, index_or_None), ...]`: each array is `[N_i, D_i]`; a part with an
    index `[E]` is gathered (`array[index]`) first. All parts must give the same number of rows.

    mode:
      "concat"  -- reference: concatenate the (gathered) parts, then one matmul.
      "split"   -- Σ_i part_i · K_i, no concatenation materialised.
      "project" -- like "split", but parts that are gathered get projected before the gather
                   (per node, N rows instead of E rows), each part into its own contiguous
                   [N, F] table. Identical in exact arithmetic; differs by float rounding only.
      "project_terms" -- the projected (table, index) pairs and the bias, unsummed, for a
                   caller that gathers them itself (MLP's row-block loop).
    With `combine`, the parts only give the kernel's row blocks K_i and the layer returns
    `combine([K_0, K_1, ...]) + bias` (the caller applies the blocks itself), or, in mode
    "project_terms", `(combine(blocks), bias)` with combine returning the (table, index) terms.
    """

    features: int
    dtype: jnp.dtype = jnp.float32
    kernel_init: Callable = nn.initializers.lecun_normal()

    @nn.compact
    def __call__(self, parts: Sequence[tuple[jnp.ndarray, jnp.ndarray | None]], mode: str = "concat",
                 combine: Callable | None = None):
        dims = [p.shape[-1] for p, _ in parts]
        kernel = self.param("kernel", self.kernel_init, (sum(dims), self.features), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
        kernel = kernel.astype(self.dtype)
        bias = bias.astype(self.dtype)
        offsets = [0]
        for d in dims:
            offsets.append(offsets[-1] + d)
        blocks = [kernel[offsets[i]:offsets[i + 1]] for i in range(len(dims))]
        if combine is not None:  # caller-supplied Σ_i f_i(K_i), e.g. projected aggregation
            return (combine(blocks), bias) if mode == "project_terms" else combine(blocks) + bias
        if mode == "concat":
            inputs = [(a if idx is None else a[idx]).astype(self.dtype) for a, idx in parts]
            return jnp.concatenate(inputs, axis=-1) @ kernel + bias
        if mode == "split":
            out = bias
            for (a, idx), k in zip(parts, blocks):
                out = out + (a if idx is None else a[idx]).astype(self.dtype) @ k
            return out
        if mode == "project":
            return _project_then_gather(parts, blocks) + bias
        if mode == "project_terms":  # the projected pieces, gathered later by the caller
            return _projected_terms(parts, blocks), bias
        raise ValueError(f"unknown ConcatDense mode {mode!r}")


def _project_then_gather(parts, blocks):
    """Σ_i (a_i · K_i)[idx_i]: each part projected per row of its own array, then gathered."""
    out = None
    for table, idx in _projected_terms(parts, blocks):
        piece = table if idx is None else gather_rows(table, idx)
        out = piece if out is None else out + piece
    return out


def _projected_terms(parts, blocks):
    """[(a_i · K_i, idx_i)]: one contiguous [N_i, F] projection per part (XLA:CPU gathers rows of
    a contiguous array several times faster than a column slice of one wide [N, ΣF] matmul)."""
    return [(a.astype(k.dtype) @ k, idx) for (a, idx), k in zip(parts, blocks)]


def gather_rows(table: jnp.ndarray, index: jnp.ndarray) -> jnp.ndarray:
    """table[index] for in-range indices (graph senders/receivers always are): skips the
    negative-index wrap-around and clamping that plain indexing adds to every gather."""
    return table.at[index].get(mode="promise_in_bounds")


# ---------------------------------------------------------------------------------------------
# LayerNorm + activation with a hand-written backward pass.
#
# Why: differentiating LayerNorm with autodiff leaves XLA:CPU a backward graph in which the row
# statistics (mean, 1/σ) get re-fused into several consumers and the per-feature sums for the
# scale/bias gradients are column reductions of long fused expressions; on large edge
# activations that made the backward many times slower than the forward. Here the forward saves
# the normalised input x̂, 1/σ and the output y as residuals, and the backward is three plain
# passes.

_EPS = 1e-6  # flax.linen.LayerNorm's default epsilon


def _row_mean(x, stats):
    """E[x] over the last axis, [..., 1]: 'reduce' (XLA row reductions) or 'matmul' (a product
    with a column of 1/F: the same sum in another order, which XLA:CPU runs as a matrix product;
    faster on the [G, P, k, C] edge activations of dense per-jet models)."""
    if stats == "matmul":
        return x @ jnp.full((x.shape[-1], 1), 1.0 / x.shape[-1], x.dtype)
    return jnp.mean(x, axis=-1, keepdims=True)


def _norm_act_forward(h, scale, bias, activation, stats="reduce"):
    h32 = h.astype(jnp.float32)
    # One-pass statistics, var = E[h²] - E[h]² (clipped at 0): flax.linen.LayerNorm's own default
    # (use_fast_variance), so the reference model computes the same formula. Both row sums read h
    # itself, so XLA:CPU does not write h - mean to memory as a pass of its own before reducing.
    mean = _row_mean(h32, stats)
    var = jnp.maximum(_row_mean(h32 * h32, stats) - mean * mean, 0.0)
    rstd = jax.lax.rsqrt(var + _EPS)
    xhat = (h32 - mean) * rstd
    y = ACTIVATIONS[activation](xhat * scale + bias)
    return y.astype(h.dtype), xhat, rstd


def norm_act(h, scale, bias, activation="tanh", stats="reduce"):
    """activation(LayerNorm(h) * scale + bias) over the last axis; h [..., F], scale/bias [F].

    Differentiable, with the hand-written backward of `_norm_act`. Works under jit, vmap,
    remat and `jax.shard_map` (replicated scale/bias are cast to h's device-varying type first,
    so autodiff sums their gradients over devices exactly as for plain jnp code). stats: how
    the row statistics are summed ('reduce' or 'matmul', see `_row_means`).
    """
    scale, bias = vary_like(scale, h), vary_like(bias, h)
    return _norm_act(h, scale, bias, activation, stats)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def _norm_act(h, scale, bias, activation="tanh", stats="reduce"):
    return _norm_act_forward(h, scale, bias, activation, stats)[0]


def _norm_act_fwd(h, scale, bias, activation, stats):
    y, xhat, rstd = _norm_act_forward(h, scale, bias, activation, stats)
    return y, (xhat, rstd, y, scale, bias)


def _norm_act_bwd(activation, stats, res, dy):
    del stats
    xhat, rstd, y, scale, bias = res
    dy = dy.astype(jnp.float32)
    if activation == "tanh":
        y32 = y.astype(jnp.float32)
        dz = dy * (1.0 - y32 * y32)
    elif activation == "identity":
        dz = dy
    else:  # derivative of the activation at z = x̂·scale + bias
        dz = jax.vjp(ACTIVATIONS[activation], xhat * scale + bias)[1](dy)[0]
    lead = tuple(range(dz.ndim - 1))
    dscale = jnp.sum(dz * xhat, axis=lead)
    dbias = jnp.sum(dz, axis=lead)
    g = dz * scale
    # plain row reductions here whatever `stats` is: matrix products made the backward slower
    dh = rstd * (g - jnp.mean(g, axis=-1, keepdims=True)
                 - xhat * jnp.mean(g * xhat, axis=-1, keepdims=True))
    return dh.astype(y.dtype), dscale, dbias


_norm_act.defvjp(_norm_act_fwd, _norm_act_bwd)


class MLP(nn.Module):
    """`len(sizes)` dense layers; LayerNorm + activation after each hidden layer, and after the
    last one only if `final_activation` (HEP.TrkX `make_mlp`). First layer is a `ConcatDense`.

    fused_norm: LayerNorm + activation via `norm_act` (hand-written backward); the parameter tree
      is the same as with flax's Dense/LayerNorm submodules ({"dense_i": {kernel, bias},
      "norm_i": {scale, bias}}), so checkpoints move freely between the two.
    chunk_size (with fused_norm): layers after the first matmul run over row blocks of this size
      under `lax.map` + `jax.checkpoint`: each block's activations stay in cache and are
      recomputed in the backward pass instead of being stored (0 = one block).
    cpu_kernel: "fused" runs the network (forward and backward) in the hand-written CPU kernels
      where this MLP is one they compute (`fused_edge_mlp_supported`: an edge network in mode "project";
      `fused_row_mlp_supported`: everything after the first matmul of a tanh + LayerNorm MLP);
      "xla" (default) never does. The caller resolves "auto"
      (`gnntrack.nn.models.resolve_cpu_kernels`).
    """

    sizes: Sequence[int]
    activation: str = "tanh"
    layer_norm: bool = True
    final_activation: bool = True
    dtype: jnp.dtype = jnp.float32
    fused_norm: bool = False
    chunk_size: int = 0
    cpu_kernel: str = "xla"

    @nn.compact
    def __call__(self, parts, mode: str = "concat", combine=None):
        act = get_activation(self.activation)
        rows = _rows(parts)
        chunked = self.fused_norm and self.chunk_size and rows > self.chunk_size
        given = mode == "project_terms" and combine is not None
        fused_edge = (self.cpu_kernel == "fused" and (given or (mode == "project" and combine is None))
                      and fused_edge_mlp_supported(self, parts))
        if given:  # the caller projected the parts itself: combine(blocks) -> [(table, index)]
            h = ConcatDense(self.sizes[0], dtype=self.dtype, name="dense_0")(parts, mode, combine)
        elif (chunked or fused_edge) and mode == "project" and combine is None:
            # Gather inside the row-block loop: the [E, F] first-layer output is never written
            # to memory, and no padded copy of it is made (only the int32 indices are padded).
            h = ConcatDense(self.sizes[0], dtype=self.dtype, name="dense_0")(parts, "project_terms")
        else:
            h = ConcatDense(self.sizes[0], dtype=self.dtype, name="dense_0")(parts, mode, combine)
        if self.fused_norm:
            layers = []
            for i, size in enumerate(self.sizes):
                dense = (self.param(f"dense_{i}", _dense_params, self.sizes[i - 1], size)
                         if i > 0 else None)
                normed = self.layer_norm and (i < len(self.sizes) - 1 or self.final_activation)
                norm = self.param(f"norm_{i}", _norm_params, size) if normed else None
                layers.append({"dense": dense, "norm": norm})
            tail = functools.partial(_mlp_tail, activation=self.activation,
                                     layer_norm=self.layer_norm,
                                     final_activation=self.final_activation, dtype=self.dtype)
            if isinstance(h, tuple):
                terms, bias = h
                if not chunked:
                    xla_rows = functools.partial(_gathered_rows, tail)
                else:
                    xla_rows = functools.partial(_chunked_gathered_rows, tail, chunk=self.chunk_size)
                if fused_edge:
                    return fused_edge_mlp(terms, bias, layers, xla_rows)
                return xla_rows(terms, bias, rows, layers)
            if chunked:
                xla_tail = functools.partial(_chunked_rows, tail, chunk=self.chunk_size)
            else:
                xla_tail = tail
            if self.cpu_kernel == "fused" and fused_row_mlp_supported(self, h):
                return fused_row_mlp(h, layers, xla_tail)
            return xla_tail(h, layers)
        for i, size in enumerate(self.sizes):
            if i > 0:
                h = nn.Dense(size, dtype=self.dtype, param_dtype=jnp.float32, name=f"dense_{i}")(h)
            if i < len(self.sizes) - 1 or self.final_activation:
                if self.layer_norm:
                    h = nn.LayerNorm(dtype=self.dtype, param_dtype=jnp.float32, name=f"norm_{i}")(h)
                h = act(h)
        return h


def _dense_params(key, in_features, out_features):
    """Same initialisation as flax.linen.Dense (lecun_normal kernel, zero bias)."""
    return {"kernel": nn.initializers.lecun_normal()(key, (in_features, out_features), jnp.float32),
            "bias": jnp.zeros((out_features,), jnp.float32)}


def _norm_params(key, features):
    del key
    return {"scale": jnp.ones((features,), jnp.float32), "bias": jnp.zeros((features,), jnp.float32)}


def _mlp_tail(h, layers, *, activation, layer_norm, final_activation, dtype):
    """Everything after the first matmul of an MLP, as a pure function of (h, layer params)."""
    act = ACTIVATIONS[activation]
    for i, layer in enumerate(layers):
        if layer["dense"] is not None:
            h = h @ layer["dense"]["kernel"].astype(dtype) + layer["dense"]["bias"].astype(dtype)
        if i < len(layers) - 1 or final_activation:
            if layer_norm:
                h = norm_act(h, layer["norm"]["scale"], layer["norm"]["bias"], activation)
            else:
                h = act(h)
    return h


def _rows(parts) -> int:
    """Number of rows the first layer of an MLP produces from its `parts`."""
    a, idx = parts[0]
    return int(a.shape[0] if idx is None else idx.shape[0])


def _sum_terms(tables, bias, pieces):
    """bias + Σ_i piece_i, gathering `tables[i][piece_i]` where a table is given (else piece_i
    is already rows); bias may be None."""
    h = bias
    for table, piece in zip(tables, pieces):
        piece = piece if table is None else gather_rows(table, piece)
        h = piece if h is None else h + piece
    return h


def _gathered_rows(fn, terms, bias, rows, params):
    """fn(Σ_i term_i + bias, params) in one block; terms as in `_chunked_gathered_rows`."""
    del rows
    tables = [None if idx is None else table for table, idx in terms]
    pieces = [table if idx is None else idx for table, idx in terms]
    return fn(_sum_terms(tables, bias, pieces), params)


def _chunked_gathered_rows(fn, terms, bias, rows, params, chunk):
    """fn(Σ_i term_i (+ bias), params) -> [R, F_out], over row blocks of `chunk` rows, each block
    rematerialised in the backward pass (its activations stay in cache instead of being stored).
    A term is either (table [N, F], index [R]) -- gathered *inside* the block -- or
    (rows [R, F], None); `bias` [F] or None.

    Indices are padded with 0 (a valid row) and row terms with zeros; the padded rows compute
    garbage that is sliced off. A table's gradient accumulates over blocks (the scan transpose's
    carry), never over an [R, F] array.
    """
    n_chunks = max(-(-rows // chunk), 1)
    # Equal blocks of at most `chunk` rows (a multiple of 8): 2,100 rows run as 2 x 1,056, not
    # 2 x 2,048, so no block is mostly padding rows computed for nothing.
    chunk = max(-(-rows // n_chunks), 1)
    chunk += -chunk % 8
    pad = n_chunks * chunk - rows
    tables, blocked = [], []
    for table, idx in terms:
        if idx is None:  # a per-row term (e.g. edge features): block it like `_chunked_rows`
            tables.append(None)
            blocked.append(jnp.pad(table, ((0, pad), (0, 0))).reshape(n_chunks, chunk, -1))
        else:
            tables.append(table)
            blocked.append(jnp.pad(idx, (0, pad)).reshape(n_chunks, chunk))

    def block(tables, bias, params, pieces):
        return fn(_sum_terms(tables, bias, pieces), params)

    block = jax.checkpoint(block)
    out = jax.lax.map(lambda pieces: block(tables, bias, params, pieces), blocked)
    return out.reshape(n_chunks * chunk, out.shape[-1])[:rows]


def _chunked_rows(fn, h, params, *, chunk):
    """fn(h, params) applied to row blocks of h [R, F]; see `_chunked_gathered_rows`."""
    return _chunked_gathered_rows(fn, [(h, None)], None, h.shape[0], params, chunk)


# ---------------------------------------------------------------------------------------------
# Edge and node networks in the fused CPU kernels (gnntrack.nn.cpu_kernels).

# The kernels' own backward passes (True) or XLA's gradient of the same network (False; kept for
# A/B measurements).
FUSED_BACKWARD = True


def _fusable_layers(mlp: MLP) -> bool:
    """Hidden layers the fused kernels compute: LayerNorm + tanh (hand-written norm, `fused_norm`),
    one width in `cpu_kernels.MLP_WIDTHS`, float32."""
    from gnntrack.nn import cpu_kernels  # noqa: PLC0415 -- keeps ctypes/compiler logic lazy

    return (mlp.fused_norm and mlp.layer_norm and mlp.activation == "tanh"
            and jnp.dtype(mlp.dtype) == jnp.float32 and len(mlp.sizes) >= 1
            and mlp.sizes[0] in cpu_kernels.MLP_WIDTHS)


def fused_edge_mlp_supported(mlp: MLP, parts) -> bool:
    """Whether `mlp` on `parts` is a network `cpu_kernels.edge_mlp` computes: two gathered parts
    (and optionally one per-edge part, e.g. edge features), hidden layers of one supported width
    (see `_fusable_layers`), a 1-unit output without activation."""
    hidden = list(mlp.sizes[:-1])
    gathered = [idx is not None for _, idx in parts]
    return (gathered in ([True, True], [True, True, False]) and len(hidden) >= 1
            and not mlp.final_activation and mlp.sizes[-1] == 1 and len(set(hidden)) == 1
            and _fusable_layers(mlp))


def fused_row_mlp_supported(mlp: MLP, h) -> bool:
    """Whether everything after `mlp`'s first matmul, applied to h [R, H], is what
    `cpu_kernels.row_mlp` computes: every layer of one supported width, each followed by
    LayerNorm + tanh (so `final_activation`)."""
    return (mlp.final_activation and len(set(mlp.sizes)) == 1 and h.ndim == 2
            and h.shape[-1] == mlp.sizes[0] and _fusable_layers(mlp))


def _pack_edge_mlp(bias, layers):
    """(vecs [L, 3, H], mats [L-1, H, H], w_out [H], b_out [1]) of an edge MLP's parameters, in
    the layout of `cpu_kernels.edge_mlp` (layer 0's bias is the first layer's ConcatDense bias)."""
    hidden = layers[:-1]
    vecs = jnp.stack([jnp.stack([bias if i == 0 else layer["dense"]["bias"],
                                 layer["norm"]["scale"], layer["norm"]["bias"]])
                      for i, layer in enumerate(hidden)])
    width = vecs.shape[-1]
    mats = (jnp.stack([layer["dense"]["kernel"] for layer in hidden[1:]]) if len(hidden) > 1
            else jnp.zeros((0, width, width), jnp.float32))
    out = layers[-1]["dense"]
    return vecs, mats, out["kernel"][:, 0], out["bias"]


def fused_edge_mlp(terms, bias, layers, xla_rows):
    """Edge MLP outputs [E, 1] computed by the fused CPU kernels (forward and backward).

    terms: [(ps [N, H], senders [E]), (pr [N, H], receivers [E])] -- the first layer projected per
    node -- and optionally (extra [E, H], None), a per-edge term (projected edge features);
    bias [H]; layers: the MLP's parameter list (see MLP). The backward pass runs
    `cpu_kernels.edge_mlp_grad` (d ps / d pr are segment sums of its per-edge gradient, d extra
    is that gradient); with FUSED_BACKWARD = False it differentiates
    `xla_rows(terms, bias, rows, layers)`, the XLA formulation of the same network, instead.
    """
    from gnntrack.nn import cpu_kernels  # noqa: PLC0415

    (ps, senders), (pr, receivers), *rest = terms
    extra = rest[0][0] if rest else None
    rows = senders.shape[0]

    def reference(ps, pr, senders, receivers, extra, bias, layers):
        per_edge = [] if extra is None else [(extra, None)]
        return xla_rows([(ps, senders), (pr, receivers)] + per_edge, bias, rows, layers)

    @jax.custom_vjp
    def edge_mlp(ps, pr, senders, receivers, extra, bias, layers):
        return cpu_kernels.edge_mlp(ps, pr, senders, receivers, *_pack_edge_mlp(bias, layers),
                                    extra=extra)[:, None]

    def forward(ps, pr, senders, receivers, extra, bias, layers):
        residuals = (ps, pr, senders, receivers, extra, bias, layers)
        return edge_mlp(*residuals), residuals

    def backward(residuals, g):
        ps, pr, senders, receivers, extra, bias, layers = residuals
        if not FUSED_BACKWARD:
            _, pullback = jax.vjp(lambda ps, pr, extra, bias, layers:
                                  reference(ps, pr, senders, receivers, extra, bias, layers),
                                  ps, pr, extra, bias, layers)
            d_ps, d_pr, d_extra, d_bias, d_layers = pullback(g)
            return d_ps, d_pr, None, None, d_extra, d_bias, d_layers
        packed, unpack = jax.vjp(_pack_edge_mlp, bias, layers)
        d_in, *d_packed = cpu_kernels.edge_mlp_grad(ps, pr, senders, receivers, *packed,
                                                    g[:, 0].astype(jnp.float32), extra=extra)
        d_ps = cpu_kernels.segment_sum(d_in, senders, ps.shape[0])
        d_pr = cpu_kernels.segment_sum(d_in, receivers, pr.shape[0])
        d_extra = None if extra is None else d_in.astype(extra.dtype)
        d_bias, d_layers = unpack(tuple(d_packed))
        return d_ps, d_pr, None, None, d_extra, d_bias, d_layers

    edge_mlp.defvjp(forward, backward)
    return edge_mlp(ps, pr, senders, receivers, extra, bias, layers)


def fused_row_mlp(h, layers, xla_tail):
    """`xla_tail(h, layers)` -- every layer of an MLP after its first matmul, all with LayerNorm
    + tanh; h [R, H] -> [R, H] -- in `cpu_kernels.row_mlp` / `row_mlp_grad` (or, with
    FUSED_BACKWARD = False, the backward pass differentiating `xla_tail`)."""
    from gnntrack.nn import cpu_kernels  # noqa: PLC0415

    @jax.custom_vjp
    def row_mlp(h, layers):
        vecs, mats = _pack_row_mlp(layers, h.shape[-1])
        return cpu_kernels.row_mlp(h, vecs, mats)

    def forward(h, layers):
        return row_mlp(h, layers), (h, layers)

    def backward(residuals, g):
        if not FUSED_BACKWARD:
            return jax.vjp(xla_tail, *residuals)[1](g)
        h, layers = residuals
        packed, unpack = jax.vjp(lambda layers: _pack_row_mlp(layers, h.shape[-1]), layers)
        dh, *d_packed = cpu_kernels.row_mlp_grad(h, *packed, g.astype(jnp.float32))
        return dh, unpack(tuple(d_packed))[0]

    row_mlp.defvjp(forward, backward)
    return row_mlp(h, layers)


def _pack_row_mlp(layers, width):
    """(vecs [L, 3, H], mats [L-1, H, H]) of the layers after an MLP's first matmul (whose bias
    is already in its input, hence a zero bias for layer 0)."""
    vecs = jnp.stack([jnp.stack([jnp.zeros((width,), jnp.float32) if i == 0 else layer["dense"]["bias"],
                                 layer["norm"]["scale"], layer["norm"]["bias"]])
                      for i, layer in enumerate(layers)])
    mats = (jnp.stack([layer["dense"]["kernel"] for layer in layers[1:]]) if len(layers) > 1
            else jnp.zeros((0, width, width), jnp.float32))
    return vecs, mats
