"""Edge-classifying graph networks: the HEP.TrkX segment classifier and the interaction network.

The segment classifier's reference module is `gnntrack.nn.segment_classifier.SegmentClassifier`
(the formulation as written); its fast form, with the same parameters and function, is
`gnntrack.nn.fast.FastSegmentClassifier`. `model.impl` ("fast" | "reference") picks one when the
registered factory builds the model; the fast form's knobs (cpu_kernels, remat) live there.

Written in Flax **Linen** (not NNX), on purpose: Linen parameters are plain nested dicts of arrays
(pytrees), which go straight through `jax.shard_map`/`pmap`, orbax checkpoints and optax, and the
modules are pure functions `model.apply({"params": p}, graph)` in the same functional style as
jraph. NNX's mutable objects would have to be split/merged at every one of those boundaries.

    config = default_model_config("segment_classifier")    # ml_collections.ConfigDict
    model = build_model(config)                            # both from gnntrack.nn.registry
    params = model.init(jax.random.key(0), graph)["params"]
    logits = model.apply({"params": params}, graph)         # float32 [E_pad]

`graph` is a `jraph.GraphsTuple` of jnp arrays (nodes float [N, F]; edges float [E, F_e] or
None; senders/receivers int32 [E]), possibly padded with `jraph.pad_with_graphs`: padding edges
connect padding nodes only, and every operation here is per-row or a sum over a node's own edges,
so padding never changes the logits of real edges.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import jraph
import ml_collections

from gnntrack.errors import ConfigError
from gnntrack.nn.fast.segment_classifier import (CPU_KERNEL_CHOICES, FastSegmentClassifier,
                                                 cpu_kernels_label, remat_mode,
                                                 resolve_cpu_kernels)
from gnntrack.nn.layers import MLP, get_activation, get_dtype
from gnntrack.nn.registry import build_model, default_model_config, get_message, register_model
from gnntrack.nn.segment_classifier import SegmentClassifier

__all__ = ["SegmentClassifier", "FastSegmentClassifier", "InteractionNetwork", "build_model",
           "default_model_config", "count_params", "cpu_kernels_label", "resolve_cpu_kernels",
           "remat_mode"]
# model.impl: the reference module as written, or its fast form (same parameters and function)
IMPLS = {"reference": SegmentClassifier, "fast": FastSegmentClassifier}
FAST_ONLY = ("remat", "cpu_kernels")  # the keys that configure the fast form only
REFERENCE_ONLY = ("history", "history_dropout")  # ... and the reference form only


# ---------------------------------------------------------------------------------------------
# HEP.TrkX segment classifier (Farrell et al. 2018; sparse version of Exa.TrkX's gnn_sparse).


def segment_classifier_config() -> ml_collections.ConfigDict:
    """Defaults of `model.name = "segment_classifier"` (the published HEP.TrkX setting)."""
    return ml_collections.ConfigDict(dict(
        name="segment_classifier", hidden=64, n_iters=8, message="bidirectional_weighted_sum",
        activation="tanh", layer_norm=True, edge_layers=3, node_layers=4,
        use_edge_features=False, impl="fast", compute_dtype="float32", cpu_kernels="auto",
        # segment training with a history table and stale-embedding dropout (reference form only)
        history=False, history_dropout=0.0,
        # False | True | "none" | "mlp" | "iteration": typed `object` so a boolean default
        # can still be overridden with a string (--config.model.remat=iteration).
        remat=ml_collections.FieldReference(False, field_type=object)))


def _check_common(values: ml_collections.ConfigDict) -> dict:
    """Checks the keys both built-in models share; returns the group without `name` as a dict."""
    get_message(values.message)
    get_activation(values.activation)
    get_dtype(values.compute_dtype)
    for key in ("hidden", "n_iters"):
        if not isinstance(values[key], int) or values[key] < (1 if key == "hidden" else 0):
            raise ConfigError(f"config key 'model.{key}' must be a positive integer, got {values[key]!r}")
    fields = values.to_dict()
    del fields["name"]
    return fields


@register_model("segment_classifier", segment_classifier_config)
def build_segment_classifier(values: ml_collections.ConfigDict) -> SegmentClassifier:
    """The segment classifier of a complete `model` group (checked: impl, remat, cpu_kernels):
    `model.impl` "fast" builds `FastSegmentClassifier`, "reference" the plain `SegmentClassifier`
    (which has no remat / cpu_kernels knobs: the fast form's only)."""
    fields = _check_common(values)
    impl = fields.pop("impl")
    if impl not in IMPLS:
        raise ConfigError(f"unknown model.impl {impl!r}; available: {', '.join(IMPLS)}")
    remat_mode(values.remat)
    if values.cpu_kernels not in CPU_KERNEL_CHOICES:
        raise ConfigError(f"unknown model.cpu_kernels {values.cpu_kernels!r}; "
                          f"available: {', '.join(CPU_KERNEL_CHOICES)}")
    if impl == "reference":
        if remat_mode(values.remat) != "none" or values.cpu_kernels == "fused":
            raise ConfigError("model.remat and model.cpu_kernels='fused' configure the fast form: "
                              "set model.impl='fast' or drop them")
        fields = {k: v for k, v in fields.items() if k not in FAST_ONLY}
    else:
        if values.get("history", False):
            raise ConfigError("model.history (segment training with a history table) is built on the "
                              "reference form: set model.impl='reference'")
        fields = {k: v for k, v in fields.items() if k not in REFERENCE_ONLY}
    if not 0.0 <= float(values.get("history_dropout", 0.0)) < 1.0:
        raise ConfigError(f"config key 'model.history_dropout' must be in [0, 1), got {values.history_dropout!r}")
    return IMPLS[impl](**fields)


# ---------------------------------------------------------------------------------------------
# Interaction network (DeZoort et al. 2021, "Charged particle tracking via edge-classifying
# interaction networks"): 6,448 parameters at hidden 40 with 3 node and 4 edge features.


def interaction_network_config() -> ml_collections.ConfigDict:
    """Defaults of `model.name = "interaction_network"` (DeZoort et al.'s small model)."""
    return ml_collections.ConfigDict(dict(
        name="interaction_network", hidden=40, n_iters=1, message="sum_incoming",
        activation="relu", layer_norm=False, relational_layers=2, object_layers=2, edge_out=4,
        node_out=3, compute_dtype="float32"))


@register_model("interaction_network", interaction_network_config)
def build_interaction_network(values: ml_collections.ConfigDict) -> "InteractionNetwork":
    """The interaction network of a complete `model` group."""
    return InteractionNetwork(**_check_common(values))


class InteractionNetwork(nn.Module):
    """Relational MLP on [x_s, x_r, e] -> edge messages; object MLP on [x, message(x, e)] -> x';
    `n_iters` such rounds (own weights each); edge classifier on [x'_s, x'_r, e'] -> logits [E]."""

    hidden: int = 40
    n_iters: int = 1
    message: str = "sum_incoming"
    activation: str = "relu"
    layer_norm: bool = False
    relational_layers: int = 2    # hidden layers of the relational / classifier MLPs
    object_layers: int = 2        # hidden layers of the object MLP
    edge_out: int = 4             # width of the relational messages e'
    node_out: int = 3             # width of the updated node features x'
    compute_dtype: str = "float32"

    @nn.compact
    def __call__(self, graph: jraph.GraphsTuple, train: bool = False) -> jnp.ndarray:
        del train
        dtype = get_dtype(self.compute_dtype)
        message = get_message(self.message)
        s, r = graph.senders, graph.receivers
        x = graph.nodes.astype(dtype)
        e = None if graph.edges is None else graph.edges.astype(dtype)

        def edge_parts(x, e):
            return [(x, s), (x, r)] + ([] if e is None else [(e, None)])

        for i in range(self.n_iters):
            e = MLP([self.hidden] * self.relational_layers + [self.edge_out], self.activation,
                    self.layer_norm, False, dtype, name=f"relational_{i}")(edge_parts(x, e))
            m = message(x, e, s, r)
            x = MLP([self.hidden] * self.object_layers + [self.node_out], self.activation,
                    self.layer_norm, False, dtype, name=f"object_{i}")([(x, None), (m, None)])
        logits = MLP([self.hidden] * self.relational_layers + [1], self.activation, self.layer_norm,
                     False, dtype, name="classifier")(edge_parts(x, e))
        return logits[:, 0].astype(jnp.float32)


def count_params(params) -> int:
    """Total number of scalar parameters in a pytree."""
    return int(sum(p.size for p in jax.tree_util.tree_leaves(params)))
