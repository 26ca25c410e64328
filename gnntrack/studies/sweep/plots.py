"""Sweep plots: optimisation history, parameter importances and parallel coordinates (PNG)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from gnntrack.io.atomic import atomic_path
from gnntrack.studies.search_space import ParamSpec
from gnntrack.studies.sweep.settings import SweepSettings


def write_sweep_plots(df, importances: Mapping[str, float], specs: Sequence[ParamSpec],
                      settings: SweepSettings, out_dir: str | os.PathLike, *, evaluator: str = "fANOVA"
                      ) -> list[Path]:
    """history.png, importances.png and parallel_coordinates.png under `out_dir`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    paths = []
    for name, draw in (("history.png", _plot_history), ("importances.png", _plot_importances),
                       ("parallel_coordinates.png", _plot_parallel)):
        fig = draw(plt, df, importances, specs, settings, evaluator)
        path = out_dir / name
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, bbox_inches="tight")
        plt.close(fig)
        paths.append(path)
    return paths


def _plot_history(plt, df, importances, specs, settings, evaluator):
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    complete = df[df["state"] == "COMPLETE"]
    pruned = df[(df["state"] == "PRUNED") & df["value"].notna()]
    ax.scatter(complete["number"], complete["value"], color="tab:blue", label="complete", zorder=3)
    if not pruned.empty:
        ax.scatter(pruned["number"], pruned["value"], color="tab:gray", marker="x",
                   label="pruned (last reported)", zorder=3)
    baseline = df[df["note"].str.startswith("baseline") & (df["state"] == "COMPLETE")]
    if not baseline.empty:
        ax.axhline(float(baseline["value"].iloc[0]), color="tab:green", ls="--", lw=1,
                   label=f"baseline (trial {int(baseline['number'].iloc[0])}, base config)")
    if not complete.empty:
        values = complete["value"].astype(float).to_numpy()
        best = np.maximum.accumulate(values) if settings.direction == "maximize" else np.minimum.accumulate(values)
        ax.step(complete["number"], best, where="post", color="tab:red", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(settings.metric)
    ax.set_title(f"Optimisation history ({settings.sampler}, {settings.pruner} pruner)")
    ax.grid(alpha=0.3)
    if not complete.empty or not pruned.empty:
        ax.legend(loc="best", fontsize=8)
    return fig


def _plot_importances(plt, df, importances, specs, settings, evaluator):
    fig, ax = plt.subplots(figsize=(6.4, 0.5 + 0.45 * max(len(specs), 2)))
    if importances:
        keys = list(importances)[::-1]  # most important on top
        ax.barh(keys, [importances[k] for k in keys], color="tab:blue")
        ax.set_xlabel(f"importance for {settings.metric} ({evaluator}, sums to 1)")
        ax.set_xlim(0, 1)
    else:
        ax.text(0.5, 0.5, "not enough complete trials\nfor parameter importances", ha="center",
                va="center", transform=ax.transAxes)
        ax.set_axis_off()
    ax.set_title("Parameter importances")
    return fig


def _axis_position(spec: ParamSpec, values) -> tuple[np.ndarray, list[tuple[float, str]]]:
    """Maps parameter values to [0, 1] (log axes for log params) and returns tick labels."""
    if spec.distribution == "categorical":
        labels = [str(c) for c in spec.choices]
        index = {str(c): i for i, c in enumerate(spec.choices)}
        n = max(len(labels) - 1, 1)
        pos = np.array([index.get(str(v), np.nan) / n for v in values], dtype=float)
        return pos, [(i / n, lab) for i, lab in enumerate(labels)]
    lo, hi = float(spec.low), float(spec.high)
    x = np.asarray([np.nan if v is None else float(v) for v in values], dtype=float)
    if spec.log:
        lo, hi, x = np.log10(lo), np.log10(hi), np.log10(x)
    span = (hi - lo) or 1.0
    suffix = " (log)" if spec.log else ""
    ticks = [(0.0, f"{spec.low:.3g}{suffix}"), (1.0, f"{spec.high:.3g}{suffix}")]
    return (x - lo) / span, ticks


def _plot_parallel(plt, df, importances, specs, settings, evaluator):
    fig, ax = plt.subplots(figsize=(1.8 * (len(specs) + 1) + 1.5, 4.2))
    data = df[(df["state"] == "COMPLETE") & df["value"].notna()]
    n_axes = len(specs) + 1
    if data.empty:
        ax.text(0.5, 0.5, "no complete trials yet", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    values = data["value"].astype(float).to_numpy()
    vlo, vhi = float(values.min()), float(values.max())
    columns, tick_sets = [], []
    for spec in specs:
        pos, ticks = _axis_position(spec, data[spec.key].tolist())
        columns.append(pos)
        tick_sets.append(ticks)
    columns.append((values - vlo) / ((vhi - vlo) or 1.0))
    tick_sets.append([(0.0, f"{vlo:.4g}"), (1.0, f"{vhi:.4g}")])
    grid = np.stack(columns, axis=1)  # [trials, axes]
    cmap = plt.get_cmap("viridis" if settings.direction == "maximize" else "viridis_r")
    colour = (values - vlo) / ((vhi - vlo) or 1.0)
    order = np.argsort(colour if settings.direction == "maximize" else -colour)  # best drawn last
    xs = np.arange(n_axes)
    for i in order:
        ax.plot(xs, grid[i], color=cmap(colour[i]), alpha=0.8, lw=1.5)
    for x, ticks in zip(xs, tick_sets):
        ax.axvline(x, color="black", lw=0.8)
        for y, label in ticks:
            ax.text(x + 0.04, y, label, fontsize=7, va="center")
    ax.set_xticks(xs, [s.key for s in specs] + [settings.metric], rotation=15, fontsize=8)
    ax.set_yticks([])
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlim(-0.2, n_axes - 0.6)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    sm = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(vlo, vhi))
    fig.colorbar(sm, ax=ax, label=settings.metric, pad=0.02)
    ax.set_title("Parallel coordinates (complete trials)")
    return fig
