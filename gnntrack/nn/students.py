"""Small, fast jet taggers (students): a fully connected network and a Deep Sets / PFN.

    jet_fc    the hardest P constituents' F inputs, flattened to [P x F] (zeros where a jet has
              fewer), then dense layers with dropout -> one logit per jet
    jet_pfn   particle-flow network (Komiske, Metodiev, Thaler 2018): a per-constituent MLP Φ,
              the sum over each jet's real constituents, then an MLP F -> one logit per jet

Both read the same jet batches as ParticleNet (`gnntrack.nn.particlenet.jet_inputs`), so a
student can be trained on reduced inputs of the teacher's data: `max_constituents` (P) and
`n_features` (the first F' of the source's features; 0 = all) are model keys. Like ParticleNet
they standardise their inputs with `input_shift` / `input_scale` (empty = none); slots without a
constituent stay zero.
Output: float32 [G, outputs].
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp
import jraph
import ml_collections

from gnntrack.nn.layers import get_activation
from gnntrack.nn.particlenet import (check_common, input_standardisation, jet_head, jet_inputs, standardised,
                                     widths)
from gnntrack.nn.registry import register_model


def jet_fc_config() -> ml_collections.ConfigDict:
    """Defaults of `model.name = "jet_fc"` (the study's fully connected network on [80 x 4])."""
    return ml_collections.ConfigDict(dict(name="jet_fc", hidden=(256, 256, 256), dropout=0.1,
                                          max_constituents=80, n_features=4, activation="relu",
                                          input_shift=(), input_scale=(), level="graph", outputs=1))


def jet_pfn_config() -> ml_collections.ConfigDict:
    """Defaults of `model.name = "jet_pfn"` (PFN sizes: Φ (100, 100, 128), F (100, 100, 100))."""
    return ml_collections.ConfigDict(dict(name="jet_pfn", phi=(100, 100, 128), head=(100, 100, 100),
                                          dropout=0.0, max_constituents=80, n_features=0,
                                          activation="relu", input_shift=(), input_scale=(), level="graph",
                                          outputs=1))


class JetFC(nn.Module):
    """Dense layers on each jet's flattened [P x F'] inputs."""

    hidden: Sequence[int] = (256, 256, 256)
    dropout: float = 0.1
    max_constituents: int = 80
    n_features: int = 4
    activation: str = "relu"
    input_shift: Sequence[float] = ()
    input_scale: Sequence[float] = ()
    outputs: int = 1

    @nn.compact
    def __call__(self, graph: jraph.GraphsTuple, train: bool = False) -> jnp.ndarray:
        x, mask = jet_inputs(graph, self.max_constituents, self.n_features)
        x = jnp.where(mask[..., None], standardised(x, self.input_shift, self.input_scale), 0.0)
        return jet_head(x.reshape(x.shape[0], -1), self.hidden, self.dropout, self.activation,
                        self.outputs, train)


class JetPFN(nn.Module):
    """Φ per constituent, masked sum per jet, F on the sum."""

    phi: Sequence[int] = (100, 100, 128)
    head: Sequence[int] = (100, 100, 100)
    dropout: float = 0.0
    max_constituents: int = 80
    n_features: int = 0
    activation: str = "relu"
    input_shift: Sequence[float] = ()
    input_scale: Sequence[float] = ()
    outputs: int = 1

    @nn.compact
    def __call__(self, graph: jraph.GraphsTuple, train: bool = False) -> jnp.ndarray:
        act = get_activation(self.activation)
        h, mask = jet_inputs(graph, self.max_constituents, self.n_features)
        h = standardised(h, self.input_shift, self.input_scale)
        for i, width in enumerate(self.phi):
            h = act(nn.Dense(width, name=f"phi_{i}")(h))
        pooled = jnp.sum(jnp.where(mask[..., None], h, 0.0), axis=1)
        return jet_head(pooled, self.head, self.dropout, self.activation, self.outputs, train)


@register_model("jet_fc", jet_fc_config)
def build_jet_fc(values: ml_collections.ConfigDict) -> JetFC:
    return JetFC(hidden=widths(values, "hidden"), **input_standardisation(values), **check_common(values))


@register_model("jet_pfn", jet_pfn_config)
def build_jet_pfn(values: ml_collections.ConfigDict) -> JetPFN:
    return JetPFN(phi=widths(values, "phi"), head=widths(values, "head"), **input_standardisation(values),
                  **check_common(values))
