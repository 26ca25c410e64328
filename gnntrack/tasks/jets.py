"""Jet tagging per jet (task 'jet'): weighted binary cross-entropy, with knowledge distillation.

Targets: `HitGraph.graph_y` float32 [2] = (label, weight) or [3] = (label, weight, teacher
logit) (`gnntrack.jets.source`). The model gives one logit s per jet.

Training loss per real jet, weighted by its training weight w (the ATLAS open data's weights
enter the loss here), summed over real jets with their count (exact across devices):

    w · [(1 - λ) · BCE(y, s) + λ · T² · KL(softmax(t/T) ‖ softmax(s/T))]

with the teacher's logit t (a binary classifier's softmax over [0, t] is (1 - σ(t), σ(t))),
temperature T and λ(step) = lambda · lambda_decay^step: the train step hands the task its step
(`train_loss_sum`), so the schedule needs no state of its own. The validation loss
(`loss_sum`) is the weighted BCE alone: what the student should end up good at, comparable
between runs with and without a teacher.

Metrics: accuracy (score >= 0.5), ROC AUC, background rejection 1/ε_B at signal efficiency
ε_S = 0.3 and 0.5; the test summary adds percentile bootstrap intervals over jets.
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
from gnntrack.train.metrics import roc_auc

WORKING_POINTS = (0.3, 0.5)  # signal efficiencies of the background-rejection metrics


def jet_task_config() -> ml_collections.ConfigDict:
    """Defaults of `task.name = "jet"`: distillation off (lambda 0); n_boot / ci_level: the test
    summary's bootstrap (0 resamples: no intervals)."""
    return ml_collections.ConfigDict(dict(name="jet", T=1.0, **{"lambda": 0.0}, lambda_decay=1.0,
                                          n_boot=200, ci_level=0.95, seed=0))


def distillation_kl(student: jnp.ndarray, teacher: jnp.ndarray, temperature: float) -> jnp.ndarray:
    """KL(softmax([0, t]/T) ‖ softmax([0, s]/T)) per jet, for logits float [M] -> [M] (>= 0)."""
    s, t = student / temperature, teacher / temperature
    p_t = jax.nn.sigmoid(t)
    return (p_t * (jax.nn.log_sigmoid(t) - jax.nn.log_sigmoid(s))
            + (1.0 - p_t) * (jax.nn.log_sigmoid(-t) - jax.nn.log_sigmoid(-s)))


def background_rejection(scores: np.ndarray, labels: np.ndarray, efficiency: float) -> float:
    """1/ε_B at the threshold that keeps a fraction `efficiency` of the signal (label 1).

    When no background jet passes, ε_B is taken as 1/n_background (the rejection is then a lower
    bound, the most the sample can show); nan without signal or background."""
    signal, background = scores[labels == 1], scores[labels == 0]
    if not len(signal) or not len(background):
        return float("nan")
    cut = np.quantile(signal, 1.0 - efficiency)
    passed = max(int(np.sum(background >= cut)), 1)
    return float(len(background) / passed)


def jet_metrics(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """accuracy, auc and rejection_<ε_S> (e.g. rejection_0.3) of scores [J] in [0, 1], labels [J]."""
    labels = np.asarray(labels).astype(np.int64)
    out = {"accuracy": float(np.mean((scores >= 0.5) == (labels == 1))) if len(labels) else float("nan"),
           "auc": roc_auc(scores, labels) if len(np.unique(labels)) == 2 else float("nan")}
    for eff in WORKING_POINTS:
        out[f"rejection_{eff}"] = background_rejection(scores, labels, eff)
    return out


def bootstrap_jet_metrics(scores: np.ndarray, labels: np.ndarray, n_boot: int, level: float, seed: int
                          ) -> dict[str, tuple[float, float]]:
    """name -> (low, high): percentile intervals of `jet_metrics` over jets resampled with
    replacement (`n_boot` times, seeded)."""
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {}
    for _ in range(n_boot):
        pick = rng.integers(0, len(labels), len(labels))
        for name, value in jet_metrics(scores[pick], labels[pick]).items():
            draws.setdefault(name, []).append(value)
    tail = 50.0 * (1.0 - level)
    return {name: (float(np.nanpercentile(v, tail)), float(np.nanpercentile(v, 100.0 - tail)))
            for name, v in draws.items()}


@dataclasses.dataclass(frozen=True)
class JetTask:
    """See the module docstring."""

    temperature: float = 1.0
    lam: float = 0.0
    lambda_decay: float = 1.0
    n_boot: int = 200
    ci_level: float = 0.95
    seed: int = 0
    level: str = "graph"
    output_width: int = 1

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict) -> "JetTask":
        temperature, lam, decay = config.T, config["lambda"], config.lambda_decay
        if not isinstance(temperature, (int, float)) or temperature <= 0:
            raise ConfigError(f"config key 'task.T' must be a number > 0, got {temperature!r}")
        if not isinstance(lam, (int, float)) or not 0.0 <= lam <= 1.0:
            raise ConfigError(f"config key 'task.lambda' must be a number in [0, 1], got {lam!r}")
        if not isinstance(decay, (int, float)) or not 0.0 < decay <= 1.0:
            raise ConfigError(f"config key 'task.lambda_decay' (factor per step) must be in (0, 1], got {decay!r}")
        if not isinstance(config.n_boot, int) or config.n_boot < 0:
            raise ConfigError(f"config key 'task.n_boot' must be an integer >= 0, got {config.n_boot!r}")
        if not 0.0 < float(config.ci_level) < 1.0:
            raise ConfigError(f"config key 'task.ci_level' must be in (0, 1), got {config.ci_level!r}")
        return cls(temperature=float(temperature), lam=float(lam), lambda_decay=float(decay),
                   n_boot=int(config.n_boot), ci_level=float(config.ci_level), seed=int(config.seed))

    def attach_targets(self, graph: HitGraph) -> HitGraph:
        """The graph itself; its graph_y must be (label, weight[, teacher logit]) (checked here)."""
        y = graph.graph_y
        need = 3 if self.lam > 0 else 2
        if y is None or np.ndim(y) != 1 or not need <= np.shape(y)[0] <= 3:
            raise ConfigError(f"task 'jet' needs graphs whose graph_y is (label, weight"
                              f"{', teacher logit' if need == 3 else '[, teacher logit]'}); jet {graph.event_id} "
                              f"has {None if y is None else np.shape(y)}"
                              + (" (task.lambda > 0 needs data.jets.teacher_dir)" if need == 3 else
                                 " (use data.source='jets')"))
        return graph

    def count(self, batch) -> jax.Array:
        return jnp.sum(batch.graph_mask.astype(jnp.float32))

    def _bce(self, logits, batch):
        return optax.sigmoid_binary_cross_entropy(logits, batch.graph_y[:, 0])

    def loss_sum(self, outputs, batch) -> jax.Array:
        """Σ over real jets of w · BCE (the validation loss). outputs float [G, 1]."""
        logits = outputs[:, 0].astype(jnp.float32)
        per_jet = batch.graph_y[:, 1] * self._bce(logits, batch)
        return jnp.sum(jnp.where(batch.graph_mask, per_jet, 0.0))

    def distillation_weight(self, step) -> jax.Array:
        """λ at train step `step` (int scalar): lambda · lambda_decay^step."""
        return self.lam * jnp.power(jnp.float32(self.lambda_decay), jnp.asarray(step, jnp.float32))

    def train_loss_sum(self, outputs, batch, step) -> jax.Array:
        """Σ over real jets of the training loss of the module docstring at train step `step`."""
        if self.lam == 0.0:
            return self.loss_sum(outputs, batch)
        logits = outputs[:, 0].astype(jnp.float32)
        lam = self.distillation_weight(step)
        kl = distillation_kl(logits, batch.graph_y[:, 2], self.temperature)
        per_jet = batch.graph_y[:, 1] * ((1.0 - lam) * self._bce(logits, batch)
                                         + lam * self.temperature ** 2 * kl)
        return jnp.sum(jnp.where(batch.graph_mask, per_jet, 0.0))

    def predict(self, outputs, batch) -> dict:
        """scores: float32 [G], P(top) = sigmoid(logit) on real jets, 0 on padding slots."""
        scores = jax.nn.sigmoid(outputs[:, 0].astype(jnp.float32))
        return {"scores": jnp.where(batch.graph_mask, scores, 0.0)}

    def targets(self, graph: HitGraph) -> np.ndarray:
        """float32 [1, K]: the jet's (label, weight[, teacher logit]) (written with its prediction)."""
        return np.asarray(graph.graph_y, np.float32)[None]

    def summary(self, preds: dict[str, list[np.ndarray]], graphs, *, prefix: str = "val_",
                loss: float | None = None) -> dict:
        """`<prefix>loss|accuracy|auc|rejection_0.3|rejection_0.5`, `n_<prefix>items`; for the
        test splits (prefix 'test...') also `<metric>_low|_high`, the bootstrap interval."""
        labels = np.array([g.graph_y[0] for g in graphs], np.int64)
        scores = np.array([float(np.reshape(s, -1)[0]) for s in preds.get("scores", [])], np.float64)
        out = {} if loss is None else {f"{prefix}loss": float(loss)}
        out[f"n_{prefix}items"] = int(len(labels))
        metrics = jet_metrics(scores, labels)
        out.update({f"{prefix}{k}": v for k, v in metrics.items()})
        if prefix.startswith("test") and self.n_boot and len(labels):
            for name, (low, high) in bootstrap_jet_metrics(scores, labels, self.n_boot, self.ci_level,
                                                           self.seed).items():
                out[f"{prefix}{name}_low"], out[f"{prefix}{name}_high"] = low, high
        return out
