"""Training to a validation target: the target, the sweep objective of a run that misses it, and
the `loop` back end of the studies (`gnntrack.train.loop.train_and_evaluate` with a report_fn
that stops at the target; checkpoints, TensorBoard and test evaluation included, slower, for
real data). The `fast` back end is `gnntrack.studies.fast_trainer.train_to_target`; both take
the same run config and write the same result.json keys.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any, Callable

import ml_collections
import numpy as np

from gnntrack.io.atomic import write_json_atomic
from gnntrack.studies.study_runner import clean
from gnntrack.train.hooks import Target
from gnntrack.train.loop import train_and_evaluate
from gnntrack.train.noise_scale import NoiseScaleTracker, step_measurement

RESULT_FILE = "result.json"
METRICS_FILE = "metrics.jsonl"


def unreached_objective(budget: int, target: Target, best_value: float, best_loss: float) -> float:
    """Sweep objective of a run that missed the target: above any reached run (> budget steps),
    ordered by the relative gap to the target and, as a tie-breaker (e.g. F1 still 0 for every
    trial), by the best validation loss."""
    loss_term = 0.1 * math.tanh(best_loss) if math.isfinite(best_loss) else 0.1
    return float(budget) * (2.0 + target.gap(best_value) + loss_term)


def loop_to_target(config: ml_collections.ConfigDict, workdir: str | os.PathLike, *,
                   report_fn: Callable[[int, dict], bool] | None = None, resume: bool = True,
                   target: Target | None = None, noise_decay: float = 0.9, stop_at_target: bool = True
                   ) -> dict[str, Any]:
    """Like `train_to_target`, through `gnntrack.train.loop.train_and_evaluate` (checkpoints,
    resume, TensorBoard). Steps-to-target has the resolution of train.eval_every; B_simple comes
    from the logged train records of metrics.jsonl (`noise_scale_from_metrics`)."""
    workdir = Path(workdir)
    if resume and (workdir / RESULT_FILE).exists():
        done = json.loads((workdir / RESULT_FILE).read_text())
        if "reached" in done:
            return done
    target = target or Target()
    hit: dict[str, Any] = {"step": None, "train_s": None}
    t0 = time.perf_counter()

    def stop(step: int, val: dict) -> bool:
        if hit["step"] is None and target.reached(float(val.get(target.metric, float("nan")))):
            hit.update(step=int(step), train_s=time.perf_counter() - t0)
        outer = report_fn(step, val) if report_fn is not None else False
        return bool(outer) or (stop_at_target and hit["step"] is not None)

    result = dict(train_and_evaluate(config, workdir, report_fn=stop, resume=resume))
    bs = int(config.batching.graphs_per_step)
    n_train = int(result.get("n_train_graphs") or 0) or 1
    reached = hit["step"] is not None
    budget = int(config.train.steps)
    value = float(result.get(target.metric, float("nan")) if result.get(target.metric) is not None else float("nan"))
    curve = noise_scale_from_metrics(workdir / METRICS_FILE, decay=noise_decay)
    b_edges = float(curve["b_simple_edges"].iloc[-1]) if len(curve) else float("nan")
    # real edges per step from the logged train records (edges/s over steps/s of each window)
    rates = [(r["edges_per_s"], r["steps_per_s"]) for r in _read_records(workdir / METRICS_FILE)
             if r.get("edges_per_s") and r.get("steps_per_s")]
    edges_per_step = float(np.mean([e / s for e, s in rates])) if rates else float("nan")
    edges_per_graph = edges_per_step / bs if math.isfinite(edges_per_step) else float("nan")
    result.update({
        "reached": reached, "steps_to_target": hit["step"],
        "examples_to_target": hit["step"] * bs if reached else None,
        "epochs_to_target": hit["step"] * bs / n_train if reached else None,
        "wall_to_target_s": hit["train_s"],
        "objective": float(hit["step"]) if reached else unreached_objective(
            budget, target, value, float(result.get("val_loss") or float("nan"))),
        "budget": budget, "batch_size": bs, "optimizer": config.optimizer.name,
        "lr": float(config.optimizer.lr), "warmup_steps": int(config.optimizer.warmup_steps),
        "seed": int(config.seed), "b_simple_edges": b_edges, "edges_per_step": edges_per_step,
        "b_simple_graphs": b_edges / edges_per_graph if edges_per_graph > 0 else float("nan"),
    })
    write_json_atomic(workdir / RESULT_FILE, clean({k: v for k, v in result.items() if not isinstance(v, dict)}))
    return clean({k: v for k, v in result.items() if not isinstance(v, dict)})


def _read_records(path: Path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def noise_scale_from_metrics(path: str | os.PathLike, decay: float = 0.9):
    """B_simple vs step from the train records of a metrics.jsonl (any gnntrack run).

    Uses the logged grad_norm_sq_local / grad_norm_sq_global / B_small / B_big (batch sizes in
    real edges) through `NoiseScaleTracker`; records from a single active device are skipped.
    Returns a DataFrame (step, b_simple_edges); empty when nothing usable was logged.
    """
    import pandas as pd

    path = Path(path)
    rows = []
    if path.exists():
        tracker = NoiseScaleTracker(decay=decay)
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            rec = json.loads(line)
            if not all(rec.get(k) is not None for k in ("grad_norm_sq_local", "grad_norm_sq_global", "B_small", "B_big")):
                continue
            row = step_measurement(rec)
            if row is None:
                continue
            rows.append({"step": int(rec["step"]), "b_simple_edges": tracker.update(*row)})
    return pd.DataFrame(rows, columns=["step", "b_simple_edges"])
