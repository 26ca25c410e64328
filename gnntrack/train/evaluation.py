"""Evaluation: edge scores over a list of graphs, and edge metrics from them.

    scores = predict_edge_scores(score_fn, graphs, batching_config, n_devices)   # [E_i] per graph
    metrics = edge_summary(scores, graphs, thresholds=(0.3, 0.5, 0.7), prefix="val_")

`score_fn(batch) -> (probabilities [D, E_pad], loss_sum [D] or None)` runs the jit-compiled eval
step on one padded `gnntrack.graphs.batching.Batch` (the loop builds it from the training core's
eval step). Graphs are visited once each, in dataset order, on their own bucket ladder (no
shuffling, no dropped remainder), so full unsectioned events work as well as sections.
Metrics count real edges only (padding never reaches the host arrays).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import ml_collections
import numpy as np

from gnntrack.graphs.types import HitGraph
from gnntrack.train.metrics import edge_metrics

ScoreFn = Callable[[Any], tuple[np.ndarray, np.ndarray | None]]
METRIC_KEYS = ("accuracy", "precision", "recall", "f1", "auc")


def eval_batching_config(batching: ml_collections.ConfigDict, n_graphs: int) -> ml_collections.ConfigDict:
    """The training batching config adapted to evaluation: fixed order, every graph once."""
    config = ml_collections.ConfigDict(batching.to_dict())
    config.shuffle = False
    config.drop_remainder = False
    config.graphs_per_step = max(1, min(int(batching.graphs_per_step), max(n_graphs, 1)))
    config.buckets = ()  # the ladder comes from the evaluated graphs' own sizes
    config.oversize = "new_bucket"
    return config


def predict_edge_scores(score_fn: ScoreFn, graphs: Sequence[HitGraph], batching: ml_collections.ConfigDict,
                        n_devices: int, *, ladder=None, batches=None) -> tuple[list[np.ndarray], float]:
    """Edge probabilities for every graph.

    Args:
      score_fn: see the module docstring.
      graphs: HitGraphs (sections or whole events).
      batching: the run's batching config (adapted with `eval_batching_config`).
      n_devices: devices the eval step runs on.
      ladder: a BucketLadder to reuse between calls (saves compilations); None builds one.
      batches: the eval batches of `graphs`, built once by the caller (every graph once, from
        `batch_iterator(..., shuffle=False, drop_remainder=False)`); None builds them.
    Returns:
      (scores: list of float32 [E_i] per graph in input order (every edge, halo edges of exact
      sections included), mean loss per counted edge (`edge_mask`) or nan).
    """
    from gnntrack.graphs.batching import batch_iterator, make_ladder, split_edge_values

    if not graphs:
        return [], float("nan")
    config = eval_batching_config(batching, len(graphs))
    if ladder is None and batches is None:
        ladder = make_ladder(graphs, config, n_devices)
    scores: dict[int, np.ndarray] = {}
    loss_sum, n_edges = 0.0, 0
    if batches is None:
        batches = batch_iterator(graphs, config, n_devices, ladder=ladder, shuffle=False, drop_remainder=False)
    for batch in batches:
        probs, batch_loss = score_fn(batch)
        scores.update(split_edge_values(batch, np.asarray(probs)))
        if batch_loss is not None:
            loss_sum += float(np.sum(batch_loss))
            n_edges += int(np.sum(batch.edge_mask))  # the edges the loss counts
    out = [np.asarray(scores[i], dtype=np.float32) for i in range(len(graphs))]
    return out, (loss_sum / n_edges if n_edges else float("nan"))


def predict_items(eval_fn: Callable[[Any], dict], graphs: Sequence[HitGraph],
                  batching: ml_collections.ConfigDict, n_devices: int, level: str, *, ladder=None,
                  batches=None) -> tuple[dict[str, list[np.ndarray]], float]:
    """A node or graph task's predictions for every graph (the edge task's are
    `predict_edge_scores`).

    Args:
      eval_fn: batch -> the parallel eval step's outputs (numpy): per-item prediction arrays
        ([D, N_pad, ...] or [D, G_pad, ...], see `gnntrack.tasks`) and loss_sum [D].
      level: 'node' or 'graph'.
      ladder, batches: as for `predict_edge_scores`.
    Returns:
      ({output name: per graph in input order, [N_i, ...] or [...]}, mean loss per real item).
    """
    from gnntrack.graphs.batching import batch_iterator, make_ladder, split_item_values

    if not graphs:
        return {}, float("nan")
    config = eval_batching_config(batching, len(graphs))
    if ladder is None and batches is None:
        ladder = make_ladder(graphs, config, n_devices)
    found: dict[str, dict[int, np.ndarray]] = {}
    loss_sum, n_items = 0.0, 0
    if batches is None:
        batches = batch_iterator(graphs, config, n_devices, ladder=ladder, shuffle=False, drop_remainder=False)
    for batch in batches:
        out = eval_fn(batch)
        for name, values in out.items():
            if name != "loss_sum":
                found.setdefault(name, {}).update(split_item_values(batch, values, level))
        loss_sum += float(np.sum(out["loss_sum"]))
        n_items += int(batch.n_real_nodes.sum()) if level == "node" else int(batch.n_graphs)
    preds = {name: [np.asarray(per[i]) for i in range(len(graphs))] for name, per in found.items()}
    return preds, (loss_sum / n_items if n_items else float("nan"))


def evaluate_graphs(eval_fn: Callable[[Any], dict], graphs: Sequence[HitGraph],
                    batching: ml_collections.ConfigDict, n_devices: int, *, task=None, ladder=None,
                    batches=None, prefix: str = "val_", thresholds=(0.5,)) -> tuple[dict[str, Any], Any]:
    """The one prediction path: every graph scored once by the eval step, then its metrics.

    Args:
      eval_fn: batch -> the parallel eval step's outputs (`gnntrack.train.step.make_eval_step`):
        'scores' and 'loss_sum' for edges, the task's prediction arrays for a node/graph task.
      task: None for the edge task (edge scores, `edge_summary`), else a node/graph task.
    Returns:
      (flat metrics with `prefix`, the predictions: edge scores per graph, or the task's
      {name: per-graph arrays}).
    """
    if task is None:
        def score_fn(batch):
            out = eval_fn(batch)
            return np.asarray(out["scores"]), np.asarray(out["loss_sum"])

        scores, loss = predict_edge_scores(score_fn, graphs, batching, n_devices, ladder=ladder, batches=batches)
        return edge_summary(scores, graphs, thresholds=thresholds, prefix=prefix, loss=loss), scores
    preds, loss = predict_items(lambda batch: {k: np.asarray(v) for k, v in eval_fn(batch).items()},
                                graphs, batching, n_devices, task.level, ladder=ladder, batches=batches)
    return task.summary(preds, graphs, prefix=prefix, loss=loss), preds


def edge_summary(scores: Sequence[np.ndarray], graphs: Sequence[HitGraph], *, thresholds=(0.5,),
                 prefix: str = "val_", loss: float | None = None) -> dict[str, Any]:
    """Flat metrics over all real edges of `graphs` that count (`HitGraph.edge_mask`: an exact
    section's halo edges are scored but belong to another section's metrics).

    Returns keys `<prefix>accuracy|precision|recall|f1|auc` at threshold 0.5, `<prefix>loss`
    (when given), `n_<prefix>edges`, `n_<prefix>true` (counts named so that plots of
    `val_*` series skip them), and `<prefix>thresholds`: {"0.3": {...}, ...}
    with the metrics at every configured threshold (0.5 always included).
    """
    counted = [slice(None) if g.edge_mask is None else np.asarray(g.edge_mask, bool) for g in graphs]
    all_scores = (np.concatenate([np.asarray(s, np.float64)[m] for s, m in zip(scores, counted)]) if scores
                  else np.zeros(0))
    labels = np.concatenate([np.asarray(g.y)[m] for g, m in zip(graphs, counted)]) if graphs else np.zeros(0)
    at_half = edge_metrics(all_scores, labels, 0.5)
    out: dict[str, Any] = {}
    if loss is not None:
        out[f"{prefix}loss"] = float(loss)
    for key in METRIC_KEYS:
        out[f"{prefix}{key}"] = float(at_half[key])
    out[f"n_{prefix}edges"] = int(at_half["n_edges"])
    out[f"n_{prefix}true"] = int(at_half["n_true"])
    per_threshold = {}
    for t in sorted({0.5, *[float(t) for t in thresholds]}):
        m = edge_metrics(all_scores, labels, t) if t != 0.5 else at_half
        per_threshold[f"{t:g}"] = {k: float(m[k]) for k in ("accuracy", "precision", "recall", "f1")}
    out[f"{prefix}thresholds"] = per_threshold
    return out


def print_summary(result: dict[str, Any], *, title: str = "gnntrack run", console=None) -> None:
    """A rich table of a run's result dict (efficiency = recall, purity = precision)."""
    from rich.console import Console
    from rich.table import Table

    if console is None:
        console = Console()
        console.width = max(console.width, 100)  # keep column names whole in narrow/piped output
    table = Table(title=title, show_header=True, header_style="bold")
    table.add_column("set")
    # a node or graph task counts its items (n_val_items ...) where the edge task counts edges
    unit = "items" if any(k.startswith("n_") and k.endswith("_items") for k in result) else "edges"
    for col in (unit, "efficiency", "purity", "accuracy", "F1", "AUC", "loss"):
        table.add_column(col, justify="right")

    def fmt(x, digits=4):
        return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"

    for label, prefix in (("validation", "val_"), ("test (held-out events)", "test_"),
                          ("test, full events", "test_full_")):
        if not any(f"{prefix}{key}" in result for key in ("recall", "accuracy", "auc", "loss")):
            continue
        table.add_row(label, f"{result.get('n_' + prefix + unit, 0):,}", fmt(result.get(prefix + "recall")),
                      fmt(result.get(prefix + "precision")), fmt(result.get(prefix + "accuracy")),
                      fmt(result.get(prefix + "f1")), fmt(result.get(prefix + "auc")),
                      fmt(result.get(prefix + "loss")))
    console.print(table)
    facts = []
    for key, label, digits in (("steps", "steps", None), ("seconds", "seconds", 1),
                               ("utilisation", "padding utilisation", 3),
                               ("n_compiled_shapes", "compiled shapes", None),
                               ("best_step", "best checkpoint step", None)):
        if result.get(key) is not None:
            value = result[key]
            facts.append(f"{label}: {value:.{digits}f}" if digits else f"{label}: {value}")
    if facts:
        console.print("  " + " · ".join(facts))
