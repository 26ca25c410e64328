"""ParticleNet and ParticleNet-Lite (Qu & Gouskos 2019, arXiv:1902.08570), per jet in dense form.

    particlenet        EdgeConv blocks k = 16, channels (64,64,64), (128,128,128), (256,256,256);
                       dense 256 + dropout 0.1
    particlenet_lite   k = 7, (32,32,32), (64,64,64); dense 128 + dropout 0.1

Input: a jraph batch of jets (`gnntrack.jets.source`: one graph per jet, nodes = constituent
features [N, F], no edges). Each jet becomes a [P, F] block (`gnntrack.nn.layers.dense`, P =
max_constituents, hardest first); every block of the network is then a batched matmul:

    EdgeConv:  kNN per jet (the first block in the first `coord_features` inputs, (d eta, d phi);
               later blocks in the previous block's output); for each neighbour j of i
               h_ij = MLP([x_i, x_j - x_i]),  x'_i = act(mean_j h_ij + shortcut(x_i))
    then the mean over each jet's real constituents, dense layers with dropout, one logit.

Differences from the paper: LayerNorm instead of BatchNorm (per row: no running statistics in
the train state, and padded slots cannot shift a real jet's normalisation), and instead of a
BatchNorm of the raw inputs a fixed standardisation (x - input_shift) * input_scale per feature
(empty = none), set from the data's statistics by the jets configs. The first edge layer is applied per constituent before the gather:
W [x_i, x_j - x_i] = (W_a - W_b) x_i + W_b x_j, the same function with k times fewer
multiplications in that layer. Padded slots are nobody's neighbour and are zeroed after every
block, so they reach neither a real constituent nor the pooled jet.
Output: float32 [G, outputs] (G = the batch's graph slots; the task masks padding slots).
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp
import jraph
import ml_collections

from gnntrack.errors import ConfigError
from gnntrack.nn.layers import get_activation, norm_act
from gnntrack.nn.layers.dense import dense_knn, gather_neighbours, masked_pool_mean, to_dense
from gnntrack.nn.registry import register_model


def particlenet_config() -> ml_collections.ConfigDict:
    """Defaults of `model.name = "particlenet"` (the paper's sizes)."""
    return ml_collections.ConfigDict(dict(
        name="particlenet", blocks=((64, 64, 64), (128, 128, 128), (256, 256, 256)), k=16, head=(256,),
        dropout=0.1, max_constituents=80, n_features=0, coord_features=2, activation="relu",
        layer_norm=True, input_shift=(), input_scale=(), level="graph", outputs=1))


def particlenet_lite_config() -> ml_collections.ConfigDict:
    """Defaults of `model.name = "particlenet_lite"` (the paper's ParticleNet-Lite)."""
    config = particlenet_config()
    config.name = "particlenet_lite"
    config.blocks, config.k, config.head = ((32, 32, 32), (64, 64, 64)), 7, (128,)
    return config


def jet_inputs(graph: jraph.GraphsTuple, max_constituents: int, n_features: int
               ) -> tuple[jnp.ndarray, jnp.ndarray]:
    """(x float32 [G, P, F'], mask bool [G, P]): each jet's first P constituents and first
    F' = n_features inputs (0: all of them) — the reduced inputs of a student."""
    x, mask = to_dense(jnp.asarray(graph.nodes, jnp.float32), graph.n_node, max_constituents)
    return (x[..., :n_features] if n_features else x), mask


class NormAct(nn.Module):
    """activation(LayerNorm(x)) over the last axis with flax.linen.LayerNorm's parameters (scale,
    bias) and formula, via `gnntrack.nn.layers.norm_act`: row statistics as matrix products and a
    hand-written backward, the faster form on [G, P, k, C] edge activations."""

    activation: str = "identity"

    @nn.compact
    def __call__(self, x):
        c = x.shape[-1]
        scale = self.param("scale", nn.initializers.ones, (c,), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros, (c,), jnp.float32)
        return norm_act(x, scale, bias, self.activation, stats="matmul")


class DenseEdgeConv(nn.Module):
    """One EdgeConv block on dense jets: x [G, P, F], mask [G, P], coords [G, P, D] -> [G, P, C]."""

    features: Sequence[int]
    k: int
    activation: str = "relu"
    layer_norm: bool = True

    @nn.compact
    def __call__(self, x, mask, coords):
        act = get_activation(self.activation)
        f = x.shape[-1]
        index, valid = dense_knn(coords, mask, self.k)
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (2 * f, self.features[0]), jnp.float32)
        centre = x @ (kernel[:f] - kernel[f:])  # [G, P, C0]: the x_i part of [x_i, x_j - x_i]
        if not self.layer_norm:  # (a LayerNorm's own shift makes a bias redundant)
            centre = centre + self.param("bias", nn.initializers.zeros, (self.features[0],), jnp.float32)
        neighbour = x @ kernel[f:]
        layers = [(None if i == 0 else nn.Dense(width, use_bias=not self.layer_norm, name=f"dense_{i}"),
                   NormAct(self.activation, name=f"norm_{i}") if self.layer_norm else act)
                  for i, width in enumerate(self.features)]
        # one neighbour slot at a time: the same sum as over a [G, P, k, C] block, with k times
        # smaller activations (they stay in cache; the block's passes are memory-bound)
        total = 0.0
        for j in range(index.shape[-1]):
            h = centre + gather_neighbours(neighbour, index[..., j:j + 1])[:, :, 0]  # [G, P, C0]
            for dense, norm in layers:
                h = norm(h if dense is None else dense(h))
            total = total + h * valid[..., j:j + 1].astype(h.dtype)
        count = jnp.sum(valid.astype(jnp.float32), axis=-1, keepdims=True)
        mean = total / jnp.maximum(count, 1.0).astype(total.dtype)
        shortcut = nn.Dense(self.features[-1], use_bias=not self.layer_norm, name="shortcut")(x)
        if self.layer_norm:
            shortcut = NormAct(name="shortcut_norm")(shortcut)
        return jnp.where(mask[..., None], act(mean + shortcut), 0.0)


class ParticleNet(nn.Module):
    """See the module docstring; fields as in `particlenet_config`."""

    blocks: Sequence[Sequence[int]] = ((64, 64, 64), (128, 128, 128), (256, 256, 256))
    k: int = 16
    head: Sequence[int] = (256,)
    dropout: float = 0.1
    max_constituents: int = 80
    n_features: int = 0
    coord_features: int = 2
    activation: str = "relu"
    layer_norm: bool = True
    input_shift: Sequence[float] = ()
    input_scale: Sequence[float] = ()
    outputs: int = 1

    @nn.compact
    def __call__(self, graph: jraph.GraphsTuple, train: bool = False) -> jnp.ndarray:
        h, mask = jet_inputs(graph, self.max_constituents, self.n_features)
        h = standardised(h, self.input_shift, self.input_scale)
        coords = h[..., :self.coord_features]
        for i, widths in enumerate(self.blocks):
            h = DenseEdgeConv(tuple(widths), self.k, self.activation, self.layer_norm,
                              name=f"edgeconv_{i}")(h, mask, coords if i == 0 else h)
        return jet_head(masked_pool_mean(h, mask), self.head, self.dropout, self.activation,
                        self.outputs, train)


def standardised(x: jnp.ndarray, shift: Sequence[float], scale: Sequence[float]) -> jnp.ndarray:
    """(x - shift) * scale over the last axis of x [..., F]; empty tuples leave x as it is.
    Inputs whose scales differ by an order of magnitude (log pT around 2, log pT/pT_jet around
    -5, d eta around 0.3) otherwise start training far from a well-conditioned first layer."""
    if shift:
        x = x - jnp.asarray(shift, x.dtype)[:x.shape[-1]]
    if scale:
        x = x * jnp.asarray(scale, x.dtype)[:x.shape[-1]]
    return x


def jet_head(x: jnp.ndarray, widths: Sequence[int], dropout: float, activation: str, outputs: int,
             train: bool) -> jnp.ndarray:
    """Dense layers (activation, dropout) then the output layer: x [G, D] -> float32 [G, outputs].
    Call inside a compact module (the layers become its submodules head_i, output)."""
    act = get_activation(activation)
    for i, width in enumerate(widths):
        x = act(nn.Dense(width, name=f"head_{i}")(x))
        if dropout:
            x = nn.Dropout(dropout, deterministic=not train)(x)
    return nn.Dense(outputs, name="output")(x).astype(jnp.float32)


def positive_int(values: ml_collections.ConfigDict, key: str, minimum: int = 1) -> int:
    """values[key] checked to be an integer >= minimum (ConfigError naming 'model.<key>')."""
    value = values[key]
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(f"config key 'model.{key}' must be an integer >= {minimum}, got {value!r}")
    return value


def widths(values: ml_collections.ConfigDict, key: str) -> tuple[int, ...]:
    """values[key] as a tuple of positive layer widths (ConfigError naming 'model.<key>')."""
    out = tuple(values[key])
    if not all(isinstance(w, int) and w > 0 for w in out):
        raise ConfigError(f"config key 'model.{key}' must list positive layer widths, got {values[key]!r}")
    return out


def check_common(values: ml_collections.ConfigDict) -> dict:
    """The keys every jet model shares, checked: max_constituents, n_features, dropout,
    activation, outputs (level must be 'graph': one output row per jet)."""
    get_activation(values.activation)
    if values.level != "graph":
        raise ConfigError(f"model {values.name!r} tags whole jets: config key 'model.level' must be "
                          f"'graph' (task 'jet'), got {values.level!r}")
    if not 0.0 <= float(values.dropout) < 1.0:
        raise ConfigError(f"config key 'model.dropout' must be in [0, 1), got {values.dropout!r}")
    return dict(max_constituents=positive_int(values, "max_constituents"),
                n_features=positive_int(values, "n_features", 0), dropout=float(values.dropout),
                activation=values.activation, outputs=positive_int(values, "outputs"))


def build_particlenet(values: ml_collections.ConfigDict) -> ParticleNet:
    """ParticleNet of a complete `model` group (sizes checked; lists become tuples)."""
    blocks = tuple(tuple(b) for b in values.blocks)
    if not blocks or not all(b and all(isinstance(w, int) and w > 0 for w in b) for b in blocks):
        raise ConfigError(f"config key 'model.blocks' must list EdgeConv blocks of positive widths, "
                          f"got {values.blocks!r}")
    return ParticleNet(blocks=blocks, k=positive_int(values, "k"), head=widths(values, "head"),
                       coord_features=positive_int(values, "coord_features"),
                       layer_norm=bool(values.layer_norm), **input_standardisation(values),
                       **check_common(values))


def input_standardisation(values: ml_collections.ConfigDict) -> dict:
    """input_shift / input_scale of `model` as float tuples (ConfigError naming the key when
    not numbers, or when both are set with different lengths). Older configs without the keys
    get none."""
    out = {}
    for key in ("input_shift", "input_scale"):
        raw = tuple(values.get(key, ()) or ())
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in raw):
            raise ConfigError(f"config key 'model.{key}' must list numbers (one per input feature), got {raw!r}")
        out[key] = tuple(float(v) for v in raw)
    if out["input_shift"] and out["input_scale"] and len(out["input_shift"]) != len(out["input_scale"]):
        raise ConfigError("config keys 'model.input_shift' and 'model.input_scale' must have one entry per "
                          f"input feature each, got {len(out['input_shift'])} and {len(out['input_scale'])}")
    return out


register_model("particlenet", particlenet_config)(build_particlenet)
register_model("particlenet_lite", particlenet_lite_config)(build_particlenet)
