"""Plots of the scaling studies (PNG, written atomically). Writers only: the numbers come from
gnntrack.studies.batch_size / data_size / devices.

Batch-size study (`write_batch_study_plots`):
  steps_to_target.png     steps vs batch, log-log, mean ± std, perfect-scaling line, S(B) fit
  examples_to_target.png  examples (graphs) vs batch, log-log, E_min and the fit
  best_lr.png             tuned LR vs batch with linear and square-root reference slopes
  curves.png              validation metric vs steps and vs examples, small vs large batch,
                          with and without warmup
  noise_scale.png         B_simple (graphs) vs step of the curve runs, with the fitted B_crit
Data-size study (`plot_data_size`):
  data_size.png           train and validation metric vs training events (log x), mean ± std
Device study (`write_device_plots`):
  throughput.png, efficiency.png, straggler.png, step_breakdown.png
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from gnntrack.io.atomic import atomic_path


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight")
    _plt().close(fig)
    return path


def _empty(fig, ax, out: Path, message: str) -> Path:
    """A placeholder figure saying why there is nothing to show."""
    ax.cla()
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()
    return _save(fig, out)


def _read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _colors(names: Sequence[str]) -> dict[str, Any]:
    cmap = _plt().get_cmap("tab10")
    return {n: cmap(i % 10) for i, n in enumerate(names)}


# ---------------------------------------------------------------------------------------------
# Batch-size study
# ---------------------------------------------------------------------------------------------

def plot_steps_to_target(summary, fits: Mapping[str, dict], out: Path, *, column: str = "steps_to_target",
                         ylabel: str = "steps to target") -> Path:
    """Log-log `column` mean ± std vs batch per optimizer; perfect scaling (steps ∝ 1/B, or
    examples constant) anchored at the smallest batch; the S(B) = S_min (1 + B_crit/B) fit."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    colors = _colors(sorted(summary.optimizer.unique()))
    plotted = False
    for opt, g in summary.groupby("optimizer", sort=True):
        g = g.sort_values("batch_size")
        b = g.batch_size.to_numpy(float)
        y = g[f"{column}_mean"].to_numpy(float)
        err = np.nan_to_num(g[f"{column}_std"].to_numpy(float))
        ok = np.isfinite(y)
        if not ok.any():
            continue
        ax.errorbar(b[ok], y[ok], yerr=err[ok], marker="o", capsize=3, color=colors[opt], label=opt)
        plotted = True
        i0 = int(np.flatnonzero(ok)[0])
        grid = np.geomspace(b.min(), b.max(), 50)
        ideal = y[i0] * b[i0] / grid if column == "steps_to_target" else np.full_like(grid, y[i0])
        ax.plot(grid, ideal, ":", color=colors[opt], alpha=0.6)
        fit = fits.get(opt, {})
        if "b_crit" in fit:
            pred = fit["s_min"] * (1 + fit["b_crit"] / grid)
            ax.plot(grid, pred if column == "steps_to_target" else pred * grid, "--", color=colors[opt], alpha=0.8)
    if not plotted:
        return _empty(fig, ax, out, "no point reached the target")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("global batch (graphs per step)")
    ax.set_ylabel(ylabel)
    ax.plot([], [], ":", color="gray", label="perfect scaling" if column == "steps_to_target" else "constant examples")
    ax.plot([], [], "--", color="gray", label="fit S_min(1 + B_crit/B)")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    return _save(fig, out)


def plot_best_lr(summary, out: Path) -> Path:
    """Tuned LR vs batch (log-log) with linear (∝ B) and square-root (∝ √B) reference slopes
    anchored at each optimizer's smallest batch."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    colors = _colors(sorted(summary.optimizer.unique()))
    plotted = False
    for opt, g in summary.groupby("optimizer", sort=True):
        g = g.sort_values("batch_size")
        b = g.batch_size.to_numpy(float)
        lr = g.best_lr.to_numpy(float)
        ok = np.isfinite(lr)
        if "tuning_reached" in g:  # a 'best' LR of a point where no trial reached the target means nothing
            ok &= g.tuning_reached.to_numpy(bool)
        if not ok.any():
            continue
        ax.plot(b[ok], lr[ok], "o-", color=colors[opt], label=opt)
        plotted = True
        b0, lr0 = b[ok][0], lr[ok][0]
        grid = np.geomspace(b.min(), b.max(), 20)
        ax.plot(grid, lr0 * grid / b0, ":", color=colors[opt], alpha=0.5)
        ax.plot(grid, lr0 * np.sqrt(grid / b0), "-.", color=colors[opt], alpha=0.5)
    if not plotted:
        return _empty(fig, ax, out, "no tuning trial reached the target")
    ax.plot([], [], ":", color="gray", label="linear (∝ B)")
    ax.plot([], [], "-.", color="gray", label="square root (∝ √B)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("global batch (graphs per step)")
    ax.set_ylabel("best learning rate (tuned; points where a trial reached the target)")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    return _save(fig, out)


def plot_curves(curves: Sequence[Mapping[str, Any]], metric: str, target: float | None, out: Path) -> Path:
    """Validation `metric` vs steps (left) and vs examples (right) of the curve runs."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    styles = {0: "-"}
    sizes = sorted({c["batch_size"] for c in curves})
    colors = _colors([str(s) for s in sizes])
    plotted = False
    for c in curves:
        recs = [r for r in _read_jsonl(Path(c["run_dir"]) / "metrics.jsonl") if r.get(metric) is not None]
        if not recs:
            continue
        plotted = True
        steps = np.array([r["step"] for r in recs], float)
        vals = np.array([r[metric] for r in recs], float)
        ls = styles.get(c["warmup"], "--")
        label = f"{c['optimizer']} B={c['batch_size']} warmup={c['warmup']} lr={c['lr']:.3g}"
        axes[0].plot(steps, vals, ls, color=colors[str(c["batch_size"])], label=label)
        axes[1].plot(steps * c["batch_size"], vals, ls, color=colors[str(c["batch_size"])], label=label)
    if not plotted:
        fig.delaxes(axes[1])
        return _empty(fig, axes[0], out, "no curve runs")
    for ax, xl in zip(axes, ("steps", "examples (graphs)")):
        ax.set_xscale("log")
        ax.set_xlabel(xl)
        ax.set_ylabel(metric)
        if target is not None:
            ax.axhline(target, color="gray", lw=0.8, ls=":")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.suptitle("training curves: small vs large batch, with (dashed) / without (solid) warmup", fontsize=10)
    return _save(fig, out)


def plot_noise_scale(runs: Sequence[Mapping[str, Any]], fits: Mapping[str, dict], out: Path) -> Path:
    """B_simple (graphs) vs step from the runs' metrics.jsonl train records, fitted B_crit as
    horizontal lines."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    colors = _colors([f"{r['optimizer']}{r['batch_size']}" for r in runs])
    plotted = False
    for r in runs:
        recs = [x for x in _read_jsonl(Path(r["run_dir"]) / "metrics.jsonl") if x.get("b_simple_graphs") is not None]
        if not recs:
            continue
        plotted = True
        ax.plot([x["step"] for x in recs], [x["b_simple_graphs"] for x in recs], color=colors[f"{r['optimizer']}{r['batch_size']}"],
                ls="-" if not r.get("warmup") else "--", alpha=0.8,
                label=f"{r['optimizer']} B={r['batch_size']} warmup={r.get('warmup', '-')}")
    for opt, f in fits.items():
        if "b_crit" in f:
            ax.axhline(f["b_crit"], ls=":", lw=1.0, color="gray")
            ax.annotate(f"B_crit fit ({opt}) = {f['b_crit']:.3g}", (0.02, f["b_crit"]), xycoords=("axes fraction", "data"),
                        fontsize=7, va="bottom")
    if not plotted:
        return _empty(fig, ax, out, "no B_simple estimate (needs >= 2 devices with edges per step)")
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_xscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("B_simple (graphs, EMA)")
    ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    return _save(fig, out)


def write_batch_study_plots(workdir: Path, summary, df, fits: Mapping[str, dict], curves: Sequence[Mapping],
                            points: Sequence[Mapping]) -> list[Path]:
    """All batch-study plots into `workdir`; returns their paths."""
    workdir = Path(workdir)
    files = []
    if len(summary):
        files.append(plot_steps_to_target(summary, fits, workdir / "steps_to_target.png"))
        files.append(plot_steps_to_target(summary, fits, workdir / "examples_to_target.png",
                                          column="examples_to_target", ylabel="examples (graphs) to target"))
        files.append(plot_best_lr(summary, workdir / "best_lr.png"))
    metric = df.target_metric.iloc[0] if len(df) else "val_f1"
    target = float(df.target_value.iloc[0]) if len(df) and df.target_value.iloc[0] is not None else None
    if curves:
        files.append(plot_curves(curves, metric, target, workdir / "curves.png"))
        files.append(plot_noise_scale(curves, fits, workdir / "noise_scale.png"))
    return files


# ---------------------------------------------------------------------------------------------
# Data-size study
# ---------------------------------------------------------------------------------------------

def plot_data_size(summary, metric: str, out: Path) -> Path:
    """Train and validation `metric` (mean ± std over seeds) vs training events, log2 x; the
    shaded band between them is the train - validation gap."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    if not len(summary):
        return _empty(fig, ax, out, "no finished point")
    s = summary.sort_values("n_train_events")
    n = s.n_train_events.to_numpy(float)
    for col, label, marker in (("train", "train (its training events)", "s"), ("val", "validation", "o")):
        ax.errorbar(n, s[f"{col}_mean"].to_numpy(float), yerr=np.nan_to_num(s[f"{col}_std"].to_numpy(float)),
                    marker=marker, capsize=3, label=label)
    ax.fill_between(n, s.train_mean.to_numpy(float), s.val_mean.to_numpy(float), color="gray", alpha=0.15,
                    label="gap")
    ax.set_xscale("log", base=2)
    ax.set_xticks(n, [str(int(v)) for v in n])
    ax.set_xlabel("training events")
    ax.set_ylabel(metric)
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    return _save(fig, out)


# ---------------------------------------------------------------------------------------------
# Device study
# ---------------------------------------------------------------------------------------------

def write_device_plots(workdir: Path, df) -> list[Path]:
    """throughput / efficiency / straggler / step-breakdown PNGs; returns their paths."""
    plt = _plt()
    workdir = Path(workdir)
    files = []
    modes = [m for m in ("strong", "weak") if m in set(df["mode"])]
    batchings = sorted(df.batching.unique())
    colors = _colors(batchings)

    fig, axes = plt.subplots(1, len(modes), figsize=(5.5 * len(modes), 4.2), squeeze=False)
    for ax, mode in zip(axes[0], modes):
        for b in batchings:
            g = df[(df["mode"] == mode) & (df.batching == b)].sort_values("n_devices")
            ax.plot(g.n_devices, g.graphs_per_s, "o-", color=colors[b], label=f"{b}")
            if len(g):
                n = g.n_devices.to_numpy(float)
                ax.plot(n, g.graphs_per_s.iloc[0] / n[0] * n, ":", color=colors[b], alpha=0.5)
        ax.plot([], [], ":", color="gray", label="ideal (linear)")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("devices")
        ax.set_ylabel("graphs / s")
        ax.set_title(f"{mode} scaling")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    files.append(_save(fig, workdir / "throughput.png"))

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for mode, ls in zip(modes, ("-", "--")):
        for b in batchings:
            g = df[(df["mode"] == mode) & (df.batching == b)].sort_values("n_devices")
            axes[0].plot(g.n_devices, g.efficiency, "o" + ls, color=colors[b], label=f"{mode}, {b}")
            axes[1].plot(g.n_devices, g.straggler_ratio, "o" + ls, color=colors[b], label=f"{mode}, {b}")
    axes[0].axhline(1.0, color="gray", lw=0.8, ls=":")
    axes[0].set_ylabel("efficiency = thr(N) / (N thr(1))")
    axes[1].axhline(1.0, color="gray", lw=0.8, ls=":")
    axes[1].set_ylabel("straggler ratio (max / mean real edges per device)")
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_xlabel("devices")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    files.append(_save(fig, workdir / "efficiency.png"))

    fig, ax = plt.subplots(figsize=(max(6.4, 0.55 * len(df)), 4.2))
    d = df.sort_values(["mode", "batching", "n_devices"])
    labels = [f"{r['mode'][0]}/{r.batching[:4]}/{r.n_devices}" for _, r in d.iterrows()]
    x = np.arange(len(d))
    ax.bar(x, d.input_ms, label="input (host batching + transfer)")
    ax.bar(x, d.compute_ms, bottom=d.input_ms, label="compute (jit step)")
    ax.set_xticks(x, labels, rotation=60, fontsize=7)
    ax.set_ylabel("ms per step")
    ax.set_title("step-time breakdown (mode/batching/devices)")
    ax.legend(fontsize=8)
    files.append(_save(fig, workdir / "step_breakdown.png"))
    return files
