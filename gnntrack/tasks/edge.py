"""Edge classification (tracking): one logit per edge, weighted binary cross-entropy.

The train step's own edge path computes exactly this (`gnntrack.train.losses.masked_loss_sum`);
the task object lets code that handles every task treat edges the same way.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections

from gnntrack.graphs.types import HitGraph
from gnntrack.train.losses import masked_loss_sum


def edge_task_config() -> ml_collections.ConfigDict:
    """Defaults of `task.name = "edge"` (its loss weights live in the `loss` group)."""
    return ml_collections.ConfigDict(dict(name="edge"))


@dataclasses.dataclass(frozen=True)
class EdgeTask:
    """Per-edge binary classification; targets are HitGraph.y, outputs logits [E]."""

    w_true: float = 1.0
    w_fake: float = 1.0
    level: str = "edge"
    output_width: int = 1

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict) -> "EdgeTask":
        del config
        return cls()

    def attach_targets(self, graph: HitGraph) -> HitGraph:
        return graph

    def count(self, batch) -> jax.Array:
        return jnp.sum(batch.edge_mask.astype(jnp.float32))

    def loss_sum(self, outputs, batch) -> jax.Array:
        return masked_loss_sum(outputs, batch.y, batch.edge_mask, self.w_true, self.w_fake)[0]

    def predict(self, outputs, batch) -> dict:
        return {"scores": jnp.where(batch.edge_mask, jax.nn.sigmoid(outputs), 0.0).astype(jnp.float32)}
