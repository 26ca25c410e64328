"""Data-size study: a validation metric vs the number of training events, with the train /
validation gap.

    config = load_config("experiments/scaling/data_size.py")
    out = run_data_size_study(config, "runs/scaling/data_size")   # results.* and data_size.png

Every point trains on the first n events of one training split (`study.train_sizes`; the
validation events are the same for every n) with `study.seeds` seeds. Every run takes the same
number of optimizer steps at the same batch size (`study.steps`, `batching.graphs_per_step`), so
the points differ only in the data they see: a small n is seen for many epochs and overfits, a
large n for few. The run keeps its best validation evaluation (early stopping on
`study.metric`, with `study.patience` evaluations without improvement ending the run early), and
the training graphs are evaluated with the same model at every evaluation, so the train metric
and the gap are those of the kept model.

Layout of the study directory W (see `gnntrack.studies.study_runner`):
  config.json, data/                  the study config and its toy graphs
  points/n<NNNN>/seed<k>/             one run per seed (result.json, metrics.jsonl)
  points/n<NNNN>/point.json           the finished point (resume skips it)
  results.csv, summary.csv, results.md, results.json, data_size.png
"""

from __future__ import annotations

import functools
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import ml_collections
import numpy as np

from gnntrack.errors import ConfigError
from gnntrack.io.atomic import write_json_atomic, write_text_atomic
from gnntrack.studies import scale_plots
from gnntrack.studies.fast_trainer import train_to_target
from gnntrack.studies.provenance import provenance, provenance_markdown, write_results_csv
from gnntrack.studies.study_runner import (finished_point, fmt, load_average, prepare_study, run_repeats,
                                           split_study_section, write_point)
from gnntrack.studies.to_target import Target
from gnntrack.studies.toy_data import default_toy_data_config

METRICS = ("auc", "f1", "precision", "recall", "accuracy", "loss")


def default_data_study_config() -> ml_collections.ConfigDict:
    """The `study` section of a data-size study (every key with its default).

    Keys:
      kind: 'data_size'.
      toy: `default_toy_data_config()` (needs max(train_sizes) + data.n_val events).
      train_sizes: training events per point (data.n_train is set to the largest).
      seeds: seeds of the runs at every point (>= 3 for mean ± std).
      metric: one of auc, f1, precision, recall, accuracy (at threshold 0.5), loss; 'loss' is
        minimised, the others maximised.
      steps: optimizer steps of every run (the same at every size).
      eval_every: steps between evaluations (validation and training graphs).
      patience: evaluations without a better validation metric before a run stops (0: never).
    """
    c = ml_collections.ConfigDict()
    c.kind = "data_size"
    c.toy = default_toy_data_config()
    c.toy.n_events = 160
    c.train_sizes = (4, 8, 16, 32, 64)
    c.seeds = (1, 2, 3)
    c.metric = "auc"
    c.steps = 600
    c.eval_every = 20
    c.patience = 10
    return c


def split_data_study_config(config: ml_collections.ConfigDict
                            ) -> tuple[ml_collections.ConfigDict, ml_collections.ConfigDict]:
    """(base run config, study section validated and merged over the defaults)."""
    base, study = split_study_section(config, default_data_study_config)
    sizes = [int(n) for n in study.train_sizes]
    if not sizes or min(sizes) < 1 or len(set(sizes)) != len(sizes):
        raise ConfigError(f"config key 'study.train_sizes' must list distinct positive event counts, got {sizes}")
    if study.metric not in METRICS:
        raise ConfigError(f"config key 'study.metric' must be one of {', '.join(METRICS)}, got {study.metric!r}")
    if not study.seeds:
        raise ConfigError("config key 'study.seeds' must list at least one seed")
    for key in ("steps", "eval_every"):
        if int(study[key]) < 1:
            raise ConfigError(f"config key 'study.{key}' must be >= 1, got {study[key]}")
    if int(study.patience) < 0:
        raise ConfigError(f"config key 'study.patience' must be >= 0, got {study.patience}")
    if min(sizes) < int(base.batching.graphs_per_step):
        raise ConfigError(f"config key 'batching.graphs_per_step'={base.batching.graphs_per_step} is more than "
                          f"the smallest training size {min(sizes)} (every size must fill a step)")
    if int(base.data.n_val) < 1:
        raise ConfigError("config key 'data.n_val' must be >= 1: the study compares train and validation")
    base.data.n_train = max(sizes)  # one split for every point: the validation events never change
    base.train.steps = int(study.steps)
    return base, study


def metric_target(study: ml_collections.ConfigDict) -> Target:
    """The validation metric as a target no run reaches: the trainer keeps its best value."""
    if study.metric == "loss":
        return Target("val_loss", -math.inf, "min")
    return Target(f"val_{study.metric}", math.inf, "max")


def data_train_fn(study: ml_collections.ConfigDict, n_events: int):
    """The study's train function for one size (a picklable partial of `train_to_target`)."""
    return functools.partial(train_to_target, target=metric_target(study), eval_rel=0.0,
                             eval_min_every=int(study.eval_every), stop_at_target=False,
                             train_events=int(n_events), eval_train=True, patience=int(study.patience))


def _point_dir(workdir: Path, n_events: int) -> Path:
    return workdir / "points" / f"n{int(n_events):04d}"


def run_data_point(base: ml_collections.ConfigDict, study: ml_collections.ConfigDict, workdir: Path,
                   n_events: int) -> dict[str, Any]:
    """Trains every seed at one size; returns (and writes) point.json. A finished point is read back."""
    pdir = _point_dir(workdir, n_events)
    done = finished_point(pdir)
    if done is not None:
        return done
    t0 = time.perf_counter()
    repeats = run_repeats(data_train_fn(study, n_events), base, study.seeds, pdir)
    return write_point(pdir, {"n_train_events": int(n_events), "seconds": time.perf_counter() - t0,
                              "repeats": repeats})


def results_frame(points: list[dict], metric: str):
    """One row per (training events, seed): the kept evaluation's train and validation metric,
    gap = train - val (val - train for the loss: positive means the model fits its training
    events better than unseen ones)."""
    import pandas as pd

    sign = -1.0 if metric == "loss" else 1.0
    rows = []
    for p in points:
        for r in p["repeats"]:
            train, val = r.get(f"best_train_{metric}"), r.get(f"best_val_{metric}")
            gap = sign * (train - val) if train is not None and val is not None else None
            rows.append({
                "n_train_events": p["n_train_events"], "seed": r.get("seed"), "metric": metric,
                "train": train, "val": val, "gap": gap, "best_step": r.get("best_step"), "steps": r.get("steps"),
                "stopped_early": r.get("stopped_early"), "epochs_at_best": (
                    r["best_step"] * r["batch_size"] / r["n_train_graphs"] if r.get("best_step") else None),
                "train_loss": r.get("best_train_loss"), "val_loss": r.get("best_val_loss"),
                "n_train_graphs": r.get("n_train_graphs"), "n_val_graphs": r.get("n_val_graphs"),
                "train_seconds": r.get("train_seconds"), "diverged": r.get("diverged"),
            })
    return pd.DataFrame(rows)


def summarise(df):
    """Mean and std (ddof 1; nan for one seed) over seeds per training-set size."""
    import pandas as pd

    rows = []
    for n, g in df.groupby("n_train_events", sort=True):
        row = {"n_train_events": int(n), "n_runs": len(g)}
        for col in ("train", "val", "gap", "best_step", "epochs_at_best"):
            vals = pd.to_numeric(g[col], errors="coerce").dropna().to_numpy(float)
            row[f"{col}_mean"] = float(vals.mean()) if len(vals) else float("nan")
            row[f"{col}_std"] = float(vals.std(ddof=1)) if len(vals) > 1 else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


def data_study_notes(summary, metric: str) -> list[str]:
    """Plain statements read off the numbers: the validation change per doubling of the data and
    where the gap is largest and smallest."""
    if not len(summary):
        return []
    s = summary.sort_values("n_train_events")
    n = s.n_train_events.to_numpy(float)
    val = s.val_mean.to_numpy(float)
    steps = [f"{int(n[i - 1])}->{int(n[i])}: {(val[i] - val[i - 1]) / math.log2(n[i] / n[i - 1]):+.3g}"
             for i in range(1, len(n)) if np.isfinite(val[i]) and np.isfinite(val[i - 1])]
    notes = [f"validation {metric} change per doubling of the training events: {', '.join(steps) or '–'}."]
    gap = s.gap_mean.to_numpy(float)
    if np.isfinite(gap).any():
        hi, lo = int(np.nanargmax(gap)), int(np.nanargmin(gap))
        notes.append(f"train - validation gap: largest {gap[hi]:.3g} at {int(n[hi])} events, smallest "
                     f"{gap[lo]:.3g} at {int(n[lo])} events.")
    return notes


def results_markdown(summary, study: ml_collections.ConfigDict, base: ml_collections.ConfigDict, prov: dict,
                     notes: list[str]) -> str:
    """results.md: mean ± std over seeds per size, the notes and the provenance."""
    m = study.metric
    pm = lambda r, c: f"{fmt(r[c + '_mean'])} ± {fmt(r[c + '_std'], 2)}"  # noqa: E731
    whole = lambda v: f"{v:.0f}" if math.isfinite(v) else fmt(v)  # noqa: E731  step counts
    lines = ["# Data-size study", "",
             f"Metric: {m}{'' if m in ('auc', 'loss') else ' at threshold 0.5'} on the edges; every run "
             f"{study.steps} optimizer steps of {base.batching.graphs_per_step} graphs, the model kept at its best "
             f"validation {m} (evaluated every {study.eval_every} steps, patience {study.patience} evaluations); "
             f"train = the same model on its training events; {base.data.n_val} validation events; mean ± std "
             f"over seeds {list(study.seeds)}.", "",
             f"| training events | train {m} | validation {m} | gap | best step | epochs at best | runs |",
             "|---|---|---|---|---|---|---|"]
    for _, r in summary.iterrows():
        lines.append(f"| {int(r.n_train_events)} | {pm(r, 'train')} | {pm(r, 'val')} | {pm(r, 'gap')} | "
                     f"{whole(r.best_step_mean)} ± {whole(r.best_step_std)} | {pm(r, 'epochs_at_best')} | {int(r.n_runs)} |")
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    lines += ["", provenance_markdown(prov)]
    return "\n".join(lines) + "\n"


def write_data_study_results(workdir: Path, points: list[dict], study: ml_collections.ConfigDict,
                             base: ml_collections.ConfigDict, config: ml_collections.ConfigDict, *,
                             elapsed_s: float, load_start: list | None) -> dict[str, Any]:
    """Writes results.csv, summary.csv, results.md, results.json and data_size.png."""
    df = results_frame(points, study.metric)
    summary = summarise(df)
    points_s = float(sum(p.get("seconds", 0.0) for p in points))
    prov = provenance(config, extra={"elapsed_s": elapsed_s, "load_average_at_start": load_start,
                                     "points_seconds": points_s})
    write_results_csv(workdir / "results.csv", df, prov)
    write_results_csv(workdir / "summary.csv", summary, prov)
    files = [scale_plots.plot_data_size(summary, study.metric, workdir / "data_size.png")]
    notes = data_study_notes(summary, study.metric)
    notes.append(f"Wall time of the points (summed over runs of this command that computed them): {points_s:.0f} s; "
                 f"this invocation: {elapsed_s:.0f} s.")
    write_text_atomic(workdir / "results.md", results_markdown(summary, study, base, prov, notes))
    write_json_atomic(workdir / "results.json", {
        "summary": json.loads(summary.to_json(orient="records")), "notes": notes,
        "plots": [p.name for p in files], "provenance": prov})
    return {"summary": summary, "results": df, "files": files, "notes": notes}


def run_data_size_study(config: ml_collections.ConfigDict, workdir: str | os.PathLike, *,
                        progress: bool = True) -> dict[str, Any]:
    """Runs (or resumes) the whole study described by `config` (run config + `study` section)."""
    from tqdm import tqdm

    t0 = time.perf_counter()
    load_start = load_average()
    workdir = Path(workdir)
    base, study = split_data_study_config(config)
    base = prepare_study(config, study, base, workdir, progress=progress)
    points = []
    bar = tqdm([int(n) for n in study.train_sizes], desc="data-size study", unit="point", disable=not progress,
               dynamic_ncols=True)
    for n in bar:
        bar.set_postfix(events=n, refresh=True)
        points.append(run_data_point(base, study, workdir, n))
    bar.close()
    out = write_data_study_results(workdir, points, study, base, config, elapsed_s=time.perf_counter() - t0,
                                   load_start=load_start)
    out["elapsed_s"] = time.perf_counter() - t0
    return out
