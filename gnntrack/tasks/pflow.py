"""Particle flow per element: class (focal loss), charge (cross-entropy), momentum (Huber).

Targets: `HitGraph.node_y` float32 [N, len(TARGET_COLUMNS)] (`gnntrack.pflow.types`): class
index (0 = no particle), charge (-1, 0, +1), pt (GeV), eta, sin φ, cos φ, energy (GeV).
Outputs per element [N, 14] (`gnntrack.nn.mlpf`): class logits [6], charge logits [3], then the
momentum in the regression space  (log(1 + pt), eta, sin φ, cos φ, log(1 + E)): the logs
bring 0.1 ... 1000 GeV to one scale for the Huber loss; `predict` returns GeV again. With
momentum_targets = 'relative' (the default, as MLPF regresses) the head predicts the particle's
momentum minus its element's own (pt or E_T, eta, sin φ, cos φ, E or p; ELEMENT_FEATURES), both in
the regression space: a charged hadron then only corrects its track, whose resolution no network
learns from scratch; 'absolute' (runs made before the key existed) predicts the momentum itself.

Loss per real element (padding never enters: masks):

    w_class · w[class] · focal(class; gamma)  +  [class ≠ none] · (w_charge · CE(charge) + w_momentum · Σ Huber(p; delta))

with w the per-class weights `class_weights` (one per class of PARTICLE_CLASSES, 'none' first;
empty = all 1): rare classes (electrons and muons are < 0.3 % of the elements) otherwise cost the
model almost nothing to ignore.

summed over real elements with their count (exact psum normalisation across devices, as for
every task). Metrics (`summary`): per-class efficiency (true c predicted c) and fake rate
(predicted c but not c), particle efficiency / purity / f1 / AUC (recall / precision / f1 / auc
of "is a particle" at P(particle) = 1 - P(none) >= 0.5),
charge accuracy, and for elements that are and are predicted a particle the pT and energy
response (median of reco / true) and resolution (IQR / median), eta and phi resolution (IQR / 1.349).
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
from gnntrack.pflow.types import ELEMENT_FEATURES, PARTICLE_CLASSES, TARGET_COLUMNS
from gnntrack.train.metrics import edge_metrics

N_CLASSES = len(PARTICLE_CLASSES)
N_CHARGES = 3
N_MOMENTUM = len(TARGET_COLUMNS) - 2
LOG_COLUMNS = np.array([True, False, False, False, True])  # pt and energy: regressed as log(1 + x)
IQR_TO_SIGMA = 1.349  # IQR of a Gaussian in units of sigma
MOMENTUM_TARGETS = ("relative", "absolute")
# the element's own (pt or E_T, eta, sin φ, cos φ, E or p): the reference of 'relative' targets
ELEMENT_KINEMATICS = slice(ELEMENT_FEATURES.index("pt_or_et"), ELEMENT_FEATURES.index("energy_or_p") + 1)


def pflow_task_config() -> ml_collections.ConfigDict:
    """Defaults of `task.name = "pflow"`: loss shape (focal gamma, Huber delta), head weights and
    the momentum targets ('relative' to the element, or 'absolute')."""
    return ml_collections.ConfigDict(dict(name="pflow", focal_gamma=2.0, huber_delta=1.0,
                                          class_weight=1.0, charge_weight=1.0, momentum_weight=1.0,
                                          momentum_targets="relative", class_weights=()))


def focal_loss(logits: jnp.ndarray, label: jnp.ndarray, gamma: float) -> jnp.ndarray:
    """-(1 - p_t)^gamma log p_t per row: logits float [M, C], label int [M] -> [M]
    (gamma = 0: cross-entropy)."""
    log_p = jnp.take_along_axis(jax.nn.log_softmax(logits, -1), label[:, None], -1)[:, 0]
    return -((1.0 - jnp.exp(log_p)) ** gamma) * log_p


def to_regression_space(momentum: jnp.ndarray) -> jnp.ndarray:
    """[M, 5] (pt, eta, sin φ, cos φ, E) in GeV -> the space the model regresses in."""
    momentum = jnp.asarray(momentum, jnp.float32)
    return jnp.where(LOG_COLUMNS, jnp.log1p(jnp.maximum(momentum, 0.0)), momentum)


def from_regression_space(values: jnp.ndarray) -> jnp.ndarray:
    """Inverse of `to_regression_space` (pt and E clipped at 0)."""
    values = jnp.asarray(values, jnp.float32)
    return jnp.where(LOG_COLUMNS, jnp.expm1(jnp.maximum(values, 0.0)), values)


@dataclasses.dataclass(frozen=True)
class PflowTask:
    """See the module docstring."""

    focal_gamma: float = 2.0
    huber_delta: float = 1.0
    class_weight: float = 1.0
    charge_weight: float = 1.0
    momentum_weight: float = 1.0
    momentum_targets: str = "relative"
    class_weights: tuple = ()
    level: str = "node"
    output_width: int = N_CLASSES + N_CHARGES + N_MOMENTUM

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict) -> "PflowTask":
        # a run saved before the key existed trained on absolute targets
        targets = config.get("momentum_targets", "absolute")
        if targets not in MOMENTUM_TARGETS:
            raise ConfigError(f"config key 'task.momentum_targets' must be one of {', '.join(MOMENTUM_TARGETS)}, "
                              f"got {targets!r}")
        values = {k: config[k] for k in pflow_task_config() if k not in ("name", "momentum_targets", "class_weights")}
        for key, value in values.items():
            if not isinstance(value, (int, float)) or value < 0:
                raise ConfigError(f"config key 'task.{key}' must be a number >= 0, got {value!r}")
        if values["huber_delta"] <= 0:
            raise ConfigError(f"config key 'task.huber_delta' must be > 0, got {values['huber_delta']!r}")
        weights = tuple(config.get("class_weights", ()))
        if weights and (len(weights) != N_CLASSES or not all(isinstance(w, (int, float)) and not isinstance(w, bool)
                                                            and w >= 0 for w in weights)):
            raise ConfigError(f"config key 'task.class_weights' must be empty or {N_CLASSES} numbers >= 0 (one per "
                              f"class: {', '.join(PARTICLE_CLASSES)}), got {config.class_weights!r}")
        return cls(momentum_targets=targets, class_weights=tuple(float(w) for w in weights),
                   **{k: float(v) for k, v in values.items()})

    def attach_targets(self, graph: HitGraph) -> HitGraph:
        """The graph itself: its `node_y` must hold the element targets (checked here, on the host)."""
        y = graph.node_y
        if y is None or np.ndim(y) != 2 or np.shape(y)[1] != len(TARGET_COLUMNS):
            raise ConfigError(f"task 'pflow' needs graphs whose node_y holds the {len(TARGET_COLUMNS)} "
                              f"target columns ({', '.join(TARGET_COLUMNS)}); event {graph.event_id} has "
                              f"{None if y is None else np.shape(y)} (use data.source=pflow)")
        return graph

    def count(self, batch) -> jax.Array:
        return jnp.sum(batch.node_mask.astype(jnp.float32))

    def split(self, outputs):
        """(class logits [M, 6], charge logits [M, 3], momentum [M, 5] in regression space)."""
        outputs = outputs.astype(jnp.float32)
        return (outputs[:, :N_CLASSES], outputs[:, N_CLASSES:N_CLASSES + N_CHARGES],
                outputs[:, N_CLASSES + N_CHARGES:])

    def loss_sum(self, outputs, batch) -> jax.Array:
        """Σ over real elements of the weighted head losses (module docstring). outputs [M, 14]."""
        cls_logits, charge_logits, momentum = self.split(outputs)
        y = batch.node_y
        label = y[:, 0].astype(jnp.int32)
        particle = label > 0
        charge = jnp.clip(y[:, 1].astype(jnp.int32) + 1, 0, N_CHARGES - 1)
        target = to_regression_space(y[:, 2:]) - self.reference(batch)
        huber = optax.huber_loss(momentum, target, delta=self.huber_delta)
        class_term = focal_loss(cls_logits, label, self.focal_gamma)
        if self.class_weights:
            class_term = class_term * jnp.asarray(self.class_weights, jnp.float32)[label]
        per_item = (self.class_weight * class_term
                    + jnp.where(particle, self.charge_weight
                                * optax.softmax_cross_entropy_with_integer_labels(charge_logits, charge)
                                + self.momentum_weight * jnp.sum(huber, -1), 0.0))
        return jnp.sum(jnp.where(batch.node_mask, per_item, 0.0))

    def predict(self, outputs, batch) -> dict:
        """scores float32 [M, 6] (class probabilities), charge [M, 3] (of -1, 0, +1), values
        [M, 5] (pt GeV, eta, sin φ, cos φ, E GeV); zero on padding."""
        cls_logits, charge_logits, momentum = self.split(outputs)
        mask = batch.node_mask[:, None]
        return {"scores": jnp.where(mask, jax.nn.softmax(cls_logits, -1), 0.0),
                "charge": jnp.where(mask, jax.nn.softmax(charge_logits, -1), 0.0),
                "values": jnp.where(mask, from_regression_space(momentum + self.reference(batch)), 0.0)}

    def reference(self, batch) -> jax.Array:
        """float32 [M, 5] added to the head's output in the regression space: the elements' own
        kinematics for 'relative' targets, zero for 'absolute'."""
        if self.momentum_targets == "absolute":
            return jnp.zeros((batch.node_mask.shape[0], N_MOMENTUM), jnp.float32)
        return to_regression_space(batch.graph.nodes[:, ELEMENT_KINEMATICS])

    def targets(self, graph: HitGraph) -> np.ndarray:
        return np.asarray(graph.node_y, np.float32)

    def summary(self, preds: dict[str, list[np.ndarray]], graphs, *, prefix: str = "val_",
                loss: float | None = None) -> dict:
        """Flat metrics over all real elements of `graphs` (module docstring), `n_<prefix>items`."""
        y = (np.concatenate([self.targets(g) for g in graphs]) if graphs
             else np.zeros((0, len(TARGET_COLUMNS)), np.float32))
        out = {} if loss is None else {f"{prefix}loss": float(loss)}
        out[f"n_{prefix}items"] = int(len(y))
        metrics = particle_flow_metrics(_rows(preds, "scores", N_CLASSES), _rows(preds, "charge", N_CHARGES),
                                        _rows(preds, "values", N_MOMENTUM), y)
        out.update({f"{prefix}{k}": v for k, v in metrics.items()})
        return out


def _rows(preds: dict[str, list[np.ndarray]], name: str, width: int) -> np.ndarray:
    """The per-graph prediction arrays `preds[name]` stacked into [M, width]."""
    parts = [np.reshape(v, (-1, width)) for v in preds.get(name, ())]
    return np.concatenate(parts) if parts else np.zeros((0, width), np.float32)


def _rate(hits: np.ndarray, where: np.ndarray) -> float:
    """Mean of `hits` over `where` (NaN when `where` is empty)."""
    return float(np.mean(hits[where])) if where.any() else float("nan")


def _response(reco: np.ndarray, true: np.ndarray) -> tuple[float, float]:
    """(median of reco / true, IQR / median) over true > 0; NaNs when there is none."""
    ok = true > 0
    if not ok.any():
        return float("nan"), float("nan")
    ratio = reco[ok] / true[ok]
    q25, median, q75 = np.percentile(ratio, [25, 50, 75])
    return float(median), float((q75 - q25) / median) if median else float("nan")


def _width(delta: np.ndarray) -> float:
    """IQR / 1.349: a Gaussian's sigma, robust to tails; NaN when empty."""
    if not len(delta):
        return float("nan")
    q25, q75 = np.percentile(delta, [25, 75])
    return float((q75 - q25) / IQR_TO_SIGMA)


def particle_flow_metrics(scores: np.ndarray, charge: np.ndarray, values: np.ndarray,
                          y: np.ndarray) -> dict[str, float]:
    """Per-element metrics: scores [M, 6], charge [M, 3], values [M, 5] (`predict`), y [M, 7]
    (targets). Keys without prefix (see the module docstring)."""
    true, pred = y[:, 0].astype(np.int64), np.argmax(scores, -1)
    out = {"accuracy": _rate(pred == true, np.ones(len(true), bool))}
    for c, name in enumerate(PARTICLE_CLASSES[1:], start=1):
        out[f"efficiency_{name}"] = _rate(pred == c, true == c)
        out[f"fake_rate_{name}"] = _rate(true != c, pred == c)
    is_particle, said_particle = true > 0, pred > 0
    # "is a particle" as a binary decision on P(particle) = 1 - P(none): efficiency (recall),
    # purity (precision), f1 and ROC AUC, as for edges
    binary = edge_metrics(1.0 - scores[:, 0], is_particle, 0.5) if len(true) else {}
    out.update({k: float(binary.get(k, float("nan"))) for k in ("recall", "precision", "f1", "auc")})
    out["charge_accuracy"] = _rate(np.argmax(charge, -1) - 1 == y[:, 1], is_particle)
    both = is_particle & said_particle
    out["pt_response"], out["pt_resolution"] = _response(values[both, 0], y[both, 2])
    out["energy_response"], out["energy_resolution"] = _response(values[both, 4], y[both, 6])
    out["eta_resolution"] = _width(values[both, 1] - y[both, 3])
    dphi = np.arctan2(values[both, 2], values[both, 3]) - np.arctan2(y[both, 4], y[both, 5])
    out["phi_resolution"] = _width((dphi + np.pi) % (2 * np.pi) - np.pi)
    return out
