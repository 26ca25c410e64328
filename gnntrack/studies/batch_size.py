"""Batch-size study: steps-, examples-, epochs- and wall-time-to-target vs global batch size.

    config = load_config("experiments/scaling/batch_size.py")
    summary = run_batch_size_study(config, "runs/scaling")      # writes results.* and plots

For every (optimizer, batch size) point the learning rate and the warmup are tuned with an equal
trial budget through `gnntrack.studies.sweep.run_sweep` (objective: steps to reach the target,
a penalty when it is not reached), then the best setting is trained to the target again with
`study.repeat_seeds` (fresh seeds, so the tuning seed does not bias the estimate). Each run
records the steps, examples (graphs), epochs and wall time to the target, the real edges per
step and the gradient noise scale B_simple (McCandlish et al. 2018) from the per-step gradient
norms of the training step. The fit S(B) = S_min (1 + B_crit / B) gives S_min, E_min and B_crit
(`gnntrack.studies.batch_fit`).

Two training back ends take the same run config (`study.backend`):
  fast: `gnntrack.studies.fast_trainer.train_to_target` (in-process caches, the LR in the
    optimizer state: the trials of one point reuse one compiled step).
  loop: `gnntrack.studies.to_target.loop_to_target` (the full training loop).

Layout of the study directory W (see `gnntrack.studies.study_runner`):
  config.json                     the study config (as run)
  data/toy-<key>/                 toy graphs (when study.toy.enabled)
  points/<opt>/bs<B>/sweep/       the tuning sweep (study.db, trials/trial_XXXX run dirs)
  points/<opt>/bs<B>/seed<k>/     repeat runs (result.json, metrics.jsonl)
  points/<opt>/bs<B>/point.json   the finished point (written last, atomically: resume skips it)
  curves/<opt>/bs<B>_warmup<W>/   curve runs (small vs large batch, with/without warmup)
  results.csv, results.md, results.json, fit.json, *.png
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import ml_collections
import numpy as np

from gnntrack.errors import ConfigError
from gnntrack.io.atomic import write_json_atomic, write_text_atomic
from gnntrack.studies import scale_plots
from gnntrack.studies import search_space as ss
from gnntrack.studies.batch_fit import fit_steps_to_target
from gnntrack.studies.fast_trainer import train_to_target
from gnntrack.studies.provenance import provenance, provenance_markdown, write_results_csv
from gnntrack.studies.study_runner import (finished_point, fmt, load_average, prepare_study, run_repeats,
                                           split_study_section, write_point)
from gnntrack.studies.sweep import run_sweep, trial_config
from gnntrack.studies.to_target import Target, loop_to_target
from gnntrack.studies.toy_data import default_toy_data_config

BACKENDS = ("fast", "loop")


def default_batch_study_config() -> ml_collections.ConfigDict:
    """The `study` section of a batch-size study (every key with its default).

    Keys:
      kind: 'batch_size'.
      backend: 'fast' | 'loop' (see module docstring).
      toy: `default_toy_data_config()`.
      batch_sizes: global batch sizes in graphs per step.
      optimizers: optimizer names (`optimizer.name`): adam, sgd (momentum from optimizer.momentum),
        lamb, lars.
      lr_range: {optimizer: (low, high)} learning-rate search range (log scale).
      sampler: 'grid' (default): lr_grid_points log-spaced LRs x warmup {0, warmup_max}, every
        combination tried at every point; 'random' | 'tpe': `trials` draws of LR (log-uniform)
        and warmup in {0, warmup_step, ..., warmup_max}.
      trials, tpe_startup_trials, sweep_seed: budget and seeds of the random / tpe samplers
        (equal budget at every point in all cases).
      target_metric, target_value, target_mode ('max' | 'min'): the validation target.
      max_steps, min_steps, max_examples: step budget of a run at batch size B:
        clip(ceil(max_examples / B), min_steps, max_steps).
      eval_rel, eval_min_every: fast back end: evaluate at step s, then at
        s + max(eval_min_every, floor(eval_rel * s)) (relative resolution of steps-to-target).
      eval_points: loop back end: evaluations per run (train.eval_every = budget / eval_points).
      repeat_seeds: seeds of the repeat runs at every point (>= 3 for mean +- std).
      noise_decay: EMA decay of the B_simple tracker.
      curve_optimizers, curve_batch_sizes (empty: smallest and largest), curve_warmup,
        curve_steps_factor: curve runs train the tuned LR with warmup 0 and curve_warmup for
        curve_steps_factor x the point's steps-to-target (at least min_steps).
      workers: local sweep worker processes.
    """
    c = ml_collections.ConfigDict()
    c.kind = "batch_size"
    c.backend = "fast"
    c.toy = default_toy_data_config()
    c.batch_sizes = (1, 2, 4, 8, 16, 32, 64)
    c.optimizers = ("adam", "sgd", "lamb", "lars")
    c.lr_range = ml_collections.ConfigDict(dict(adam=(1.5e-3, 4e-2), adamw=(1.5e-3, 4e-2), sgd=(1e-2, 0.3),
                                                lamb=(2e-3, 6e-2), lars=(0.3, 10.0)))
    c.warmup_max = 40
    c.warmup_step = 10
    c.lr_grid_points = 4
    c.trials = 6
    c.sampler = "grid"
    c.tpe_startup_trials = 4
    c.sweep_seed = 0
    c.target_metric = "val_f1"
    c.target_value = 0.88
    c.target_mode = "max"
    c.max_steps = 1000
    c.min_steps = 300
    c.max_examples = 8000
    c.eval_rel = 0.05
    c.eval_min_every = 1
    c.eval_points = 40
    c.repeat_seeds = (1, 2, 3)
    c.noise_decay = 0.9
    c.curve_optimizers = ("adam",)
    c.curve_batch_sizes = ()
    c.curve_warmup = 40
    c.curve_steps_factor = 2.0
    c.workers = 1
    return c


def step_budget(study: ml_collections.ConfigDict, batch_size: int) -> int:
    """Steps a run at `batch_size` may take: clip(ceil(max_examples / B), min_steps, max_steps)."""
    return int(min(int(study.max_steps), max(int(study.min_steps),
                                             math.ceil(float(study.max_examples) / batch_size))))


def split_study_config(config: ml_collections.ConfigDict
                       ) -> tuple[ml_collections.ConfigDict, ml_collections.ConfigDict]:
    """(base run config without `study`, study section validated against the defaults)."""
    base, merged = split_study_section(config, default_batch_study_config)
    if merged.backend not in BACKENDS:
        raise ConfigError(f"config key 'study.backend' must be one of {', '.join(BACKENDS)}, got {merged.backend!r}")
    if not merged.batch_sizes or any(int(b) < 1 for b in merged.batch_sizes):
        raise ConfigError(f"config key 'study.batch_sizes' must list positive integers, got {merged.batch_sizes}")
    for name in merged.optimizers:
        if name not in merged.lr_range:
            raise ConfigError(f"config key 'study.lr_range' has no range for optimizer {name!r}")
        low, high = merged.lr_range[name]
        if not 0 < low < high:
            raise ConfigError(f"config key 'study.lr_range.{name}' must be (low, high) with 0 < low < high")
    if int(merged.trials) < 1:
        raise ConfigError("config key 'study.trials' must be >= 1")
    if merged.sampler not in ("grid", "random", "tpe"):
        raise ConfigError(f"config key 'study.sampler' must be grid, random or tpe, got {merged.sampler!r}")
    if int(merged.lr_grid_points) < 1:
        raise ConfigError("config key 'study.lr_grid_points' must be >= 1")
    if merged.target_mode not in ("max", "min"):
        raise ConfigError(f"config key 'study.target_mode' must be 'max' or 'min', got {merged.target_mode!r}")
    return base, merged


def point_config(base: ml_collections.ConfigDict, study: ml_collections.ConfigDict, optimizer: str,
                 batch_size: int) -> ml_collections.ConfigDict:
    """The run config of one (optimizer, batch size) point (LR/warmup still the base values)."""
    config = ml_collections.ConfigDict(base.to_dict())
    config.optimizer.name = optimizer
    low, high = study.lr_range[optimizer]
    config.optimizer.lr = float(math.sqrt(float(low) * float(high)))  # the sweep's baseline trial
    config.batching.graphs_per_step = int(batch_size)
    config.train.steps = step_budget(study, batch_size)
    if study.backend == "loop":
        config.train.eval_every = max(1, config.train.steps // max(1, int(study.eval_points)))
        config.train.checkpoint_every = 0
    config.lock()
    return config


def search_space(study: ml_collections.ConfigDict, optimizer: str) -> list[dict]:
    low, high = study.lr_range[optimizer]
    if study.sampler == "grid":
        # the same log-spaced LR grid x {0, warmup_max} at every batch size (equal budget, and a
        # best-LR-vs-batch curve read off a common grid)
        grid = [float(x) for x in np.geomspace(float(low), float(high), int(study.lr_grid_points))]
        space = [ss.log_uniform("optimizer.lr", float(low), float(high), grid=grid)]
        if int(study.warmup_max) > 0:
            space.append(ss.choice("optimizer.warmup_steps", [0, int(study.warmup_max)]))
        return space
    space = [ss.log_uniform("optimizer.lr", float(low), float(high))]
    if int(study.warmup_max) > 0:
        space.append(ss.int_range("optimizer.warmup_steps", 0, int(study.warmup_max),
                                  step=max(1, int(study.warmup_step))))
    return space


def n_trials(study: ml_collections.ConfigDict) -> int:
    """Tuning trials per point: the grid size for sampler 'grid', else study.trials."""
    if study.sampler == "grid":
        return int(study.lr_grid_points) * (2 if int(study.warmup_max) > 0 else 1)
    return int(study.trials)


def study_train_fn(study: ml_collections.ConfigDict, *, stop_at_target: bool = True) -> Callable:
    """The train function of the study's back end with the target bound (picklable partial)."""
    target = Target(study.target_metric, float(study.target_value), study.target_mode)
    if study.backend == "loop":
        return functools.partial(loop_to_target, target=target, noise_decay=float(study.noise_decay),
                                 stop_at_target=stop_at_target)
    return functools.partial(train_to_target, target=target, eval_rel=float(study.eval_rel),
                             eval_min_every=int(study.eval_min_every), noise_decay=float(study.noise_decay),
                             stop_at_target=stop_at_target)


def _point_dir(workdir: Path, optimizer: str, batch_size: int) -> Path:
    return workdir / "points" / optimizer / f"bs{int(batch_size):04d}"


def run_point(base: ml_collections.ConfigDict, study: ml_collections.ConfigDict, workdir: Path,
              optimizer: str, batch_size: int, *, progress: bool = True) -> dict[str, Any]:
    """Tunes LR + warmup at one point, then repeats the best setting; returns (and writes) point.json.
    A finished point (point.json present) is read back, not rerun."""
    pdir = _point_dir(workdir, optimizer, batch_size)
    done = finished_point(pdir)
    if done is not None:
        return done
    config = point_config(base, study, optimizer, batch_size)
    train_fn = study_train_fn(study)
    t0 = time.perf_counter()
    sweep = run_sweep(config, search_space(study, optimizer), pdir / "sweep", n_trials=n_trials(study),
                      sampler=study.sampler, pruner="none", metric="objective", direction="minimize",
                      seed=int(study.sweep_seed), train_fn=train_fn, workers=int(study.workers),
                      show_progress=False, tpe_startup_trials=int(study.tpe_startup_trials))
    tune_s = time.perf_counter() - t0
    params = dict(sweep.best_params)
    repeats = run_repeats(train_fn, trial_config(config, params, None), study.repeat_seeds, pdir)
    trials = sweep.trials_df
    point = {
        "optimizer": optimizer, "batch_size": int(batch_size), "budget": int(config.train.steps),
        "best_params": params, "best_objective": sweep.best_value, "tune_seconds": tune_s,
        "seconds": time.perf_counter() - t0,  # tuning + repeats (wall)
        "trials": json.loads(trials.to_json(orient="records")) if trials is not None else [],
        "repeats": repeats,
    }
    return write_point(pdir, point)


def curve_runs(base: ml_collections.ConfigDict, study: ml_collections.ConfigDict, workdir: Path,
               points: Mapping[tuple[str, int], dict]) -> list[dict]:
    """Training curves at the smallest and largest batch (or study.curve_batch_sizes) with warmup
    0 and study.curve_warmup, at the point's tuned LR, for a fixed number of steps (no early stop).
    Returns [{optimizer, batch_size, warmup, run_dir}] of finished runs."""
    sizes = list(study.curve_batch_sizes) or sorted({min(study.batch_sizes), max(study.batch_sizes)})
    train_fn = study_train_fn(study, stop_at_target=False)
    out = []
    for optimizer in study.curve_optimizers:
        for bs in sizes:
            point = points.get((optimizer, int(bs)))
            if point is None:
                continue
            reached = [r["steps_to_target"] for r in point["repeats"] if r.get("steps_to_target")]
            steps = int(max(int(study.min_steps), math.ceil(float(study.curve_steps_factor) *
                                                           (np.median(reached) if reached else point["budget"] / 2))))
            for warmup in sorted({0, int(study.curve_warmup)}):
                cfg = ml_collections.ConfigDict(point_config(base, study, optimizer, bs).to_dict())
                cfg.optimizer.lr = float(point["best_params"].get("optimizer.lr", cfg.optimizer.lr))
                cfg.optimizer.warmup_steps = warmup
                cfg.train.steps = steps
                cfg.seed = int(study.repeat_seeds[0]) if len(study.repeat_seeds) else int(cfg.seed)
                run_dir = workdir / "curves" / optimizer / f"bs{int(bs):04d}_warmup{warmup}"
                train_fn(cfg, str(run_dir), report_fn=None, resume=True)
                out.append({"optimizer": optimizer, "batch_size": int(bs), "warmup": warmup,
                            "lr": cfg.optimizer.lr, "run_dir": str(run_dir)})
    return out


def results_frame(points: list[dict]):
    """One row per (optimizer, batch size, repeat seed)."""
    import pandas as pd

    rows = []
    for p in points:
        for r in p["repeats"]:
            rows.append({
                "optimizer": p["optimizer"], "batch_size": p["batch_size"], "seed": r.get("seed"),
                "reached": bool(r.get("reached")), "steps_to_target": r.get("steps_to_target"),
                "examples_to_target": r.get("examples_to_target"), "epochs_to_target": r.get("epochs_to_target"),
                "wall_to_target_s": r.get("wall_to_target_s"), "edges_per_step": r.get("edges_per_step"),
                "padded_edges_per_step": r.get("padded_edges_per_step"), "budget": p["budget"],
                "best_lr": p["best_params"].get("optimizer.lr"), "best_warmup": p["best_params"].get("optimizer.warmup_steps"),
                "tuning_objective": p.get("best_objective"),
                "tuning_reached": p.get("best_objective") is not None and p["best_objective"] <= p["budget"],
                "target_metric": r.get("target_metric"),
                "target_value": r.get("target_value"), "best_val": r.get(f"best_{r.get('target_metric')}"),
                "b_simple_graphs": r.get("b_simple_graphs"), "b_simple_edges": r.get("b_simple_edges"),
                "steps": r.get("steps"), "diverged": r.get("diverged"),
            })
    return pd.DataFrame(rows)


def summarise(df):
    """Mean / std per (optimizer, batch size) over the repeats that reached the target."""
    import pandas as pd

    rows = []
    for (opt, bs), g in df.groupby(["optimizer", "batch_size"], sort=True):
        ok = g[g.reached]
        row = {"optimizer": opt, "batch_size": int(bs), "n_runs": len(g), "n_reached": len(ok),
               "best_lr": g.best_lr.iloc[0], "best_warmup": g.best_warmup.iloc[0],
               "tuning_reached": bool(g.tuning_reached.iloc[0]),
               "edges_per_step": float(g.edges_per_step.mean()),
               "b_simple_graphs": float(pd.to_numeric(g.b_simple_graphs, errors="coerce").median())}
        for col in ("steps_to_target", "examples_to_target", "epochs_to_target", "wall_to_target_s"):
            vals = pd.to_numeric(ok[col], errors="coerce").dropna().to_numpy(float)
            row[f"{col}_mean"] = float(vals.mean()) if len(vals) else float("nan")
            row[f"{col}_std"] = float(vals.std(ddof=1)) if len(vals) > 1 else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


def fit_summary(summary) -> dict[str, dict]:
    """{optimizer: {s_min, e_min, b_crit, rms_log_residual, n_points}} from the mean steps at the
    points where every repeat reached the target (>= 2 batch sizes needed; else an 'error')."""
    out = {}
    for opt, g in summary.groupby("optimizer", sort=True):
        ok = g[(g.n_reached == g.n_runs) & np.isfinite(g.steps_to_target_mean.to_numpy(float))]
        try:
            fit = fit_steps_to_target(ok.batch_size.to_numpy(float), ok.steps_to_target_mean.to_numpy(float))
            out[opt] = {**dataclasses.asdict(fit), "n_points": int(len(ok))}
        except ValueError as exc:
            out[opt] = {"error": str(exc), "n_points": int(len(ok))}
    return out


def results_markdown(summary, fits: Mapping[str, dict], study: ml_collections.ConfigDict, prov: dict,
                     notes: list[str] | None = None) -> str:
    """results.md: the per-point table (mean ± std over the repeats that reached the target),
    the S(B) fit per optimizer, notes and provenance."""
    lines = ["# Batch-size study", "",
             f"Target: {study.target_metric} {'>=' if study.target_mode == 'max' else '<='} {study.target_value} "
             f"(back end '{study.backend}', {n_trials(study)} tuning trials per point ({study.sampler}), repeats with seeds "
             f"{list(study.repeat_seeds)}; mean ± std over repeats that reached the target).", "",
             "| optimizer | batch (graphs) | edges/step | reached | steps | examples | epochs | wall s | best LR | warmup | B_simple (graphs) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for _, r in summary.iterrows():
        pm = lambda c: f"{fmt(r[c + '_mean'])} ± {fmt(r[c + '_std'], 2)}"  # noqa: E731
        lines.append(f"| {r.optimizer} | {r.batch_size} | {r.edges_per_step:.0f} | {r.n_reached}/{r.n_runs} | "
                     f"{pm('steps_to_target')} | {pm('examples_to_target')} | {pm('epochs_to_target')} | "
                     f"{pm('wall_to_target_s')} | {fmt(r.best_lr)}{'' if r.tuning_reached else ' (no trial reached)'} | "
                     f"{fmt(r.best_warmup)} | {fmt(r.b_simple_graphs)} |")
    lines += ["", "## Fit S(B) = S_min (1 + B_crit / B)", "", "| optimizer | S_min (steps) | E_min (graphs) | B_crit (graphs) | rms log residual | points |",
              "|---|---|---|---|---|---|"]
    for opt, f in fits.items():
        if "error" in f:
            lines.append(f"| {opt} | – | – | – | – | {f['n_points']} ({f['error']}) |")
        else:
            lines.append(f"| {opt} | {f['s_min']:.3g} | {f['e_min']:.3g} | {f['b_crit']:.3g} | "
                         f"{f['rms_log_residual']:.3f} | {f['n_points']} |")
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    lines += ["", provenance_markdown(prov)]
    return "\n".join(lines) + "\n"


def write_batch_study_results(workdir: Path, points: list[dict], curves: list[dict],
                              study: ml_collections.ConfigDict, config: ml_collections.ConfigDict,
                              *, elapsed_s: float | None = None, load_start: list | None = None) -> dict[str, Any]:
    """Writes results.csv / .md / .json, fit.json and the plots; returns {summary, fits, files}."""
    df = results_frame(points)
    summary = summarise(df)
    fits = fit_summary(summary)
    points_s = float(sum(p.get("seconds", p.get("tune_seconds", 0.0)) for p in points))
    prov = provenance(config, extra={"elapsed_s": elapsed_s, "load_average_at_start": load_start,
                                     "points_seconds": points_s})
    write_results_csv(workdir / "results.csv", df, prov)
    write_results_csv(workdir / "summary.csv", summary, prov)
    write_json_atomic(workdir / "fit.json", {"fits": fits, "provenance": prov})
    files = scale_plots.write_batch_study_plots(workdir, summary, df, fits, curves, points)
    notes = batch_study_notes(summary, fits)
    notes.append(f"Wall time of the points (tuning + repeats, summed over runs of this command that "
                 f"computed them): {points_s:.0f} s; this invocation: {elapsed_s or 0:.0f} s.")
    write_text_atomic(workdir / "results.md", results_markdown(summary, fits, study, prov, notes))
    write_json_atomic(workdir / "results.json", {
        "summary": json.loads(summary.to_json(orient="records")), "fits": fits, "curves": curves,
        "notes": notes, "plots": [str(p.name) for p in files], "provenance": prov})
    return {"summary": summary, "fits": fits, "files": files, "notes": notes}


def batch_study_notes(summary, fits: Mapping[str, dict]) -> list[str]:
    """Plain statements read off the numbers: scaling efficiency between neighbouring batch sizes
    (1 = perfect: doubling B halves the steps; 0 = no gain) and the fitted B_crit."""
    notes = []
    for opt, g in summary.groupby("optimizer", sort=True):
        g = g.sort_values("batch_size")
        b = g.batch_size.to_numpy(float)
        s = g.steps_to_target_mean.to_numpy(float)
        effs = []
        for i in range(1, len(b)):
            if np.isfinite(s[i]) and np.isfinite(s[i - 1]) and s[i] > 0:
                # efficiency of the step from B_{i-1} to B_i: log speed-up / log batch ratio
                effs.append(f"{int(b[i - 1])}->{int(b[i])}: {math.log(s[i - 1] / s[i]) / math.log(b[i] / b[i - 1]):.2f}")
        fit = fits.get(opt, {})
        crit = f"B_crit ≈ {fit['b_crit']:.3g} graphs, S_min ≈ {fit['s_min']:.3g} steps" if "b_crit" in fit else "no fit"
        notes.append(f"{opt}: scaling efficiency (log speed-up / log batch ratio) {', '.join(effs) or '–'}; {crit}.")
    return notes


def run_batch_size_study(config: ml_collections.ConfigDict, workdir: str | os.PathLike, *,
                         progress: bool = True) -> dict[str, Any]:
    """Runs (or resumes) the whole study described by `config` (run config + `study` section)."""
    from tqdm import tqdm

    t0 = time.perf_counter()
    load_start = load_average()
    workdir = Path(workdir)
    base, study = split_study_config(config)
    base = prepare_study(config, study, base, workdir, progress=progress)
    pairs = [(o, int(b)) for o in study.optimizers for b in study.batch_sizes]
    points: dict[tuple[str, int], dict] = {}
    bar = tqdm(pairs, desc="batch-size study", unit="point", disable=not progress, dynamic_ncols=True)
    for optimizer, bs in bar:
        bar.set_postfix(optimizer=optimizer, batch=bs, refresh=True)
        points[(optimizer, bs)] = run_point(base, study, workdir, optimizer, bs, progress=progress)
        reached = [r for r in points[(optimizer, bs)]["repeats"] if r.get("reached")]
        if reached:
            bar.set_postfix(optimizer=optimizer, batch=bs,
                            steps=f"{np.mean([r['steps_to_target'] for r in reached]):.0f}", refresh=True)
    bar.close()
    curves = curve_runs(base, study, workdir, points)
    out = write_batch_study_results(workdir, list(points.values()), curves, study, config,
                                    elapsed_s=time.perf_counter() - t0, load_start=load_start)
    out["elapsed_s"] = time.perf_counter() - t0
    return out
