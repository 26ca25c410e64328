"""Node and graph tasks: a class head and/or regression heads per node or per graph.

Targets ride on the HitGraph as `node_y` float32 [N, K] or `graph_y` float32 [K], with
K = (1 if n_classes else 0) + n_regression: column 0 the class index (0/1 for two classes),
the rest the regression targets. The model's outputs per item [.., W] hold the class logits
first (one logit for two classes, `n_classes` otherwise) and the regression values after.

Loss per real item: cross-entropy of the class head (binary with one logit) plus the squared
error summed over the regression heads; summed over real items with their count, so the step's
psum normalisation is exact across devices.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from gnntrack.errors import ConfigError
from gnntrack.graphs.types import HitGraph
from gnntrack.train.metrics import edge_metrics

LEVELS = ("node", "graph")


def _noise_target(graph: HitGraph) -> np.ndarray:
    """1.0 for a noise hit (no particle: particle_id == 0), 0.0 for a hit on a track."""
    return (np.asarray(graph.particle_id) == 0).astype(np.float32)[:, None]


# Built-in per-node targets computed from the tracking truth; "given" keeps HitGraph.node_y.
NODE_TARGETS = {"noise": _noise_target}


def node_task_config() -> ml_collections.ConfigDict:
    """Defaults of `task.name = "node"`: noise hit vs track hit on the tracking graphs.

    Keys: target ('noise' from the truth, or 'given': the graphs' own node_y), n_classes
    (0 = no class head, 2 = binary with one logit, > 2 = softmax), n_regression (heads after it).
    """
    return ml_collections.ConfigDict(dict(name="node", target="noise", n_classes=2, n_regression=0))


def graph_task_config() -> ml_collections.ConfigDict:
    """Defaults of `task.name = "graph"`: the graphs' own targets (`HitGraph.graph_y`)."""
    return ml_collections.ConfigDict(dict(name="graph", target="given", n_classes=2, n_regression=0))


@dataclasses.dataclass(frozen=True)
class LabelTask:
    """Classification and/or regression per node (level 'node') or per graph ('graph')."""

    level: str
    n_classes: int = 2
    n_regression: int = 0
    target: str = "given"

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict) -> "LabelTask":
        n_classes, n_regression = int(config.n_classes), int(config.n_regression)
        if n_classes == 1 or n_classes < 0:
            raise ConfigError(f"config key 'task.n_classes' must be 0 (no class head) or >= 2, got {n_classes}")
        if n_regression < 0 or n_classes + n_regression == 0:
            raise ConfigError("config keys 'task.n_classes' / 'task.n_regression': the task needs a head")
        known = ("given", *NODE_TARGETS) if config.name == "node" else ("given",)
        if config.target not in known:
            raise ConfigError(f"unknown task.target {config.target!r} for task {config.name!r}; "
                              f"available: {', '.join(known)}")
        return cls(level=config.name, n_classes=n_classes, n_regression=n_regression,
                   target=config.target)

    @property
    def class_width(self) -> int:
        return 1 if self.n_classes == 2 else self.n_classes

    @property
    def output_width(self) -> int:
        return self.class_width + self.n_regression

    def attach_targets(self, graph: HitGraph) -> HitGraph:
        """`graph` with `node_y` computed from its truth (target 'noise'); 'given' checks it."""
        if self.target != "given":
            return dataclasses.replace(graph, node_y=NODE_TARGETS[self.target](graph))
        have = graph.node_y if self.level == "node" else graph.graph_y
        if have is None:
            raise ConfigError(f"task {self.level!r} with target 'given' needs graphs carrying "
                              f"{self.level}_y (event {graph.event_id})")
        return graph

    def _mask_and_targets(self, batch):
        if self.level == "node":
            return batch.node_mask, batch.node_y
        return batch.graph_mask, batch.graph_y

    def count(self, batch) -> jax.Array:
        return jnp.sum(self._mask_and_targets(batch)[0].astype(jnp.float32))

    def loss_sum(self, outputs, batch) -> jax.Array:
        """Σ over real items of the class cross-entropy + Σ_r squared error. outputs [M, W]."""
        mask, y = self._mask_and_targets(batch)
        outputs = outputs.astype(jnp.float32)
        per_item = jnp.zeros(mask.shape, jnp.float32)
        if self.n_classes:
            logits, label = outputs[:, :self.class_width], y[:, 0]
            if self.n_classes == 2:
                per_item += optax.sigmoid_binary_cross_entropy(logits[:, 0], label)
            else:
                per_item += optax.softmax_cross_entropy_with_integer_labels(logits, label.astype(jnp.int32))
        if self.n_regression:
            first = 1 if self.n_classes else 0
            err = outputs[:, self.class_width:] - y[:, first:]
            per_item += jnp.sum(jnp.square(err), axis=-1)
        return jnp.sum(jnp.where(mask, per_item, 0.0))

    def predict(self, outputs, batch) -> dict:
        """scores: float32 [M] (P(class 1), two classes) or [M, C] (softmax); values [M, R]."""
        mask = self._mask_and_targets(batch)[0]
        outputs = outputs.astype(jnp.float32)
        out = {}
        if self.n_classes:
            logits = outputs[:, :self.class_width]
            probs = jax.nn.sigmoid(logits[:, 0]) if self.n_classes == 2 else jax.nn.softmax(logits, -1)
            out["scores"] = jnp.where(mask.reshape(mask.shape + (1,) * (probs.ndim - 1)), probs, 0.0)
        if self.n_regression:
            out["values"] = jnp.where(mask[:, None], outputs[:, self.class_width:], 0.0)
        return out

    def targets(self, graph: HitGraph) -> np.ndarray:
        """The graph's targets: [N, K] (node) or [1, K] (graph)."""
        return np.asarray(graph.node_y if self.level == "node" else graph.graph_y[None], np.float32)

    def summary(self, preds: dict[str, list[np.ndarray]], graphs, *, prefix: str = "val_",
                loss: float | None = None) -> dict:
        """Flat metrics over all real items of `graphs`: `<prefix>loss`, `<prefix>accuracy`; for
        two classes also precision, recall, f1 and auc (class 1 positive); `<prefix>mse` over
        the regression heads; `n_<prefix>items`."""
        y = np.concatenate([self.targets(g) for g in graphs]) if graphs else np.zeros((0, 1))
        out = {} if loss is None else {f"{prefix}loss": float(loss)}
        out[f"n_{prefix}items"] = int(len(y))
        if self.n_classes:
            scores = np.concatenate([np.reshape(s, (-1,) + np.shape(s)[1:] if self.level == "node"
                                                else (1,) + np.shape(s)) for s in preds["scores"]])
            label = y[:, 0].astype(np.int64)
            if self.n_classes == 2:
                m = edge_metrics(scores, label, 0.5)
                out.update({f"{prefix}{k}": float(m[k]) for k in ("accuracy", "precision", "recall", "f1", "auc")})
            else:
                out[f"{prefix}accuracy"] = float(np.mean(np.argmax(scores, -1) == label)) if len(label) else float("nan")
        if self.n_regression:
            values = np.concatenate([np.reshape(v, (-1, self.n_regression)) for v in preds["values"]])
            first = 1 if self.n_classes else 0
            out[f"{prefix}mse"] = float(np.mean(np.square(values - y[:, first:]))) if len(y) else float("nan")
        return out
