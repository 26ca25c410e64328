"""MLPF: particles from an event's elements (tracks and clusters) without quadratic cost.

    x = MLP(s(elements))                       s(v) = sign(v) log(1 + |v|): GeV-scale features
    n_layers × { x = LayerNorm(x + message(x)) }   message: 'lsh' (GNN-LSH bins, `dense` for the
                                                 quadratic reference) or 'kernel_attention'
    class  = MLP(x)                    [N, head_widths[0]]   logits (class 0 = no particle)
    charge = MLP(x)                    [N, head_widths[1]]   logits of -1, 0, +1
    p      = MLP([x, class, charge])   [N, head_widths[2]]   momentum (pt, eta, sin φ, cos φ, E)
    returns float32 [N, outputs] = concat(class, charge, p) (the 'pflow' task's layout)

Mixed precision: `dtype = 'bfloat16'` computes the dense layers in bf16 with float32 parameters
(the optimiser keeps fp32 master weights); the distance space, hashing, Gaussian kernel and the
attention's random features stay float32 inside the layers (`gnntrack.nn.layers.lsh`,
`gnntrack.nn.layers.kernel_attention`), and the outputs are float32 for the losses.

LSH bins come from `hash_space`: 'eta_phi' hashes each element's direction (eta, sin φ, cos φ)
-- the elements of one particle point the same way, so they share bins from the first step on --
while the Gaussian kernel inside a bin uses the learned distance space; 'learned' hashes the
learned space itself, as the published MLPF does (at initialisation it tends to bin tracks and
clusters apart, so a track and its cluster may never meet).

Padding is safe: jraph's padding nodes form a graph of their own, and neither a bin nor an
attention sum ever holds two graphs.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp
import jraph
import ml_collections

from gnntrack.errors import ConfigError
from gnntrack.nn.layers import MLP, get_activation, get_dtype
from gnntrack.nn.layers.kernel_attention import KernelAttention
from gnntrack.nn.layers.lsh import LSHMessagePassing
from gnntrack.nn.registry import register_model
from gnntrack.pflow.types import ELEMENT_FEATURES, PARTICLE_CLASSES

MESSAGES = ("lsh", "kernel_attention")
HASH_SPACES = ("eta_phi", "learned")
DIRECTION = [ELEMENT_FEATURES.index(c) for c in ("eta", "sin_phi", "cos_phi")]
N_CHARGES = 3       # -1, 0, +1
N_MOMENTUM = 5      # pt, eta, sin phi, cos phi, energy


def mlpf_config() -> ml_collections.ConfigDict:
    """Defaults of `model.name = "mlpf"`."""
    return ml_collections.ConfigDict(dict(
        name="mlpf", hidden=64, n_layers=2, message="lsh",
        bin_size=128, n_buckets=16, distance_dim=16, n_convs=2, dense=False,   # message 'lsh'
        hash_space="eta_phi",
        attention_heads=4, n_random_features=64,                                # 'kernel_attention'
        activation="gelu", dtype="float32", seed=0,
        level="node", outputs=len(PARTICLE_CLASSES) + N_CHARGES + N_MOMENTUM,
        head_widths=(len(PARTICLE_CLASSES), N_CHARGES, N_MOMENTUM)))


def signed_log(x: jnp.ndarray) -> jnp.ndarray:
    """sign(x) log(1 + |x|): energies and momenta from 0.1 to 1000 GeV into O(1) inputs,
    type flags and angles almost unchanged."""
    return jnp.sign(x) * jnp.log1p(jnp.abs(x))


class MLPF(nn.Module):
    """See the module docstring. graph.nodes float [N, len(ELEMENT_FEATURES)] -> float32 [N, outputs]."""

    hidden: int = 64
    n_layers: int = 2
    message: str = "lsh"
    bin_size: int = 128
    n_buckets: int = 16
    distance_dim: int = 16
    n_convs: int = 2
    dense: bool = False
    hash_space: str = "eta_phi"
    attention_heads: int = 4
    n_random_features: int = 64
    activation: str = "gelu"
    dtype: str = "float32"
    seed: int = 0
    level: str = "node"
    outputs: int = len(PARTICLE_CLASSES) + N_CHARGES + N_MOMENTUM
    head_widths: Sequence[int] = (len(PARTICLE_CLASSES), N_CHARGES, N_MOMENTUM)

    def message_layer(self, i: int, dtype) -> nn.Module:
        if self.message == "kernel_attention":
            return KernelAttention(features=self.hidden, heads=self.attention_heads,
                                   n_random_features=self.n_random_features, dtype=dtype,
                                   seed=self.seed + i, name=f"message_{i}")
        return LSHMessagePassing(features=self.hidden, distance_dim=self.distance_dim, bin_size=self.bin_size,
                                 n_buckets=self.n_buckets, n_convs=self.n_convs, dense=self.dense,
                                 activation=self.activation, dtype=dtype, seed=self.seed + i,
                                 name=f"message_{i}")

    @nn.compact
    def __call__(self, graph: jraph.GraphsTuple, train: bool = False) -> jnp.ndarray:
        del train
        dtype = get_dtype(self.dtype)
        mlp = dict(activation=self.activation, layer_norm=True, dtype=dtype)
        x = MLP([self.hidden, self.hidden], name="encoder", **mlp)([(signed_log(graph.nodes.astype(jnp.float32)), None)])
        extra = {}
        if self.message == "lsh" and self.hash_space == "eta_phi":
            extra["hash_points"] = graph.nodes[:, DIRECTION].astype(jnp.float32)
        for i in range(self.n_layers):
            h = self.message_layer(i, dtype)(x, graph.n_node, **extra)
            x = nn.LayerNorm(dtype=dtype, param_dtype=jnp.float32, name=f"norm_{i}")(x + h)
        n_class, n_charge, n_momentum = self.head_widths
        head = dict(final_activation=False, **mlp)
        cls = MLP([self.hidden, n_class], name="class_head", **head)([(x, None)])
        charge = MLP([self.hidden, n_charge], name="charge_head", **head)([(x, None)])
        momentum = MLP([self.hidden, n_momentum], name="momentum_head", **head)(
            [(x, None), (cls, None), (charge, None)])
        return jnp.concatenate([cls, charge, momentum], axis=-1).astype(jnp.float32)


def _positive(values, key):
    if not isinstance(values[key], int) or values[key] < 1:
        raise ConfigError(f"config key 'model.{key}' must be a positive integer, got {values[key]!r}")


@register_model("mlpf", mlpf_config)
def build_mlpf(values: ml_collections.ConfigDict) -> MLPF:
    """The MLPF model of a complete `model` group (keys checked, errors name them)."""
    get_activation(values.activation)
    get_dtype(values.dtype)
    for key in ("hidden", "n_layers", "bin_size", "n_buckets", "distance_dim", "n_convs",
                "attention_heads", "n_random_features", "outputs"):
        _positive(values, key)
    if values.message not in MESSAGES:
        raise ConfigError(f"config key 'model.message' must be one of {', '.join(MESSAGES)} for model "
                          f"'mlpf', got {values.message!r}")
    if values.hash_space not in HASH_SPACES:
        raise ConfigError(f"config key 'model.hash_space' must be one of {', '.join(HASH_SPACES)}, "
                          f"got {values.hash_space!r}")
    if values.level != "node":
        raise ConfigError(f"model 'mlpf' predicts per element: config key 'model.level' must be 'node' "
                          f"(task 'pflow'), got {values.level!r}")
    if values.n_buckets % 2:
        raise ConfigError(f"config key 'model.n_buckets' must be even (argmax over [xR, -xR]), got {values.n_buckets}")
    if values.hidden % values.attention_heads:
        raise ConfigError(f"config key 'model.hidden' ({values.hidden}) must be a multiple of "
                          f"'model.attention_heads' ({values.attention_heads})")
    widths = tuple(values.head_widths)
    if len(widths) != 3 or sum(widths) != values.outputs:
        raise ConfigError(f"config key 'model.head_widths' must be (classes, charges, momentum) adding up "
                          f"to 'model.outputs' = {values.outputs} (the task's width), got {widths}")
    fields = values.to_dict()
    del fields["name"]
    fields["head_widths"] = widths
    return MLPF(**fields)
