"""Report plots (PNG, matplotlib Agg backend), each written atomically.

Every `plot_*` function takes arrays or a file path plus `out_png`, draws one figure, writes it
with `gnntrack.io.atomic.atomic_path` and returns the output path. They compute nothing that the
report needs elsewhere: numbers come from `gnntrack.tracks` / `gnntrack.train.metrics`.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from gnntrack.errors import InputError
from gnntrack.io.atomic import atomic_path
from gnntrack.train.metrics import roc_auc, roc_curve

# Distinct colours that stay readable on white; cycled for many tracks in event displays.
_TRUE_COLOUR = "tab:blue"
_FAKE_COLOUR = "tab:red"
_MAX_CURVE_POINTS = 4000  # ROC curves of millions of edges are thinned to this many points


def _pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend (safe on headless machines)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, out_png: str | os.PathLike, *, dpi: int = 110) -> Path:
    """Writes `fig` to `out_png` atomically and closes it."""
    plt = _pyplot()
    out_png = Path(out_png)
    try:
        with atomic_path(out_png) as tmp:
            fig.savefig(tmp, dpi=dpi, format="png", bbox_inches="tight")
    finally:
        plt.close(fig)
    return out_png


# ---------------------------------------------------------------------------------------------
# Training curves
# ---------------------------------------------------------------------------------------------

def read_metrics_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Reads a metrics.jsonl file: one JSON object per line.

    Blank lines are skipped, and so is a final line cut short by a writer that is still running
    (a partially written record is expected while training goes on). A malformed line elsewhere
    raises InputError naming the file and line.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"metrics file not found: {path}")
    lines = path.read_text(encoding="utf-8").splitlines()
    records = []
    for i, line in enumerate(lines):
        line = line.strip()
        if not line:
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            if i == len(lines) - 1:
                continue  # truncated last record of a live run
            raise InputError(f"{path}:{i + 1}: not a JSON object: {exc}") from exc
        if isinstance(record, dict):
            records.append(record)
    return records


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def metric_series(records: Iterable[Mapping[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of `key` over the records that carry both a numeric `step` and `key`.

    Records are sorted by step; if a step repeats (a resumed run re-logs it) the last one wins.
    """
    pairs = {}
    for r in records:
        step, value = r.get("step"), r.get(key)
        if _is_number(step) and _is_number(value):
            pairs[int(step)] = float(value)
    if not pairs:
        return np.zeros(0, np.int64), np.zeros(0, np.float64)
    steps = np.array(sorted(pairs), dtype=np.int64)
    return steps, np.array([pairs[s] for s in steps], dtype=np.float64)


def rolling_envelope(values: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Trailing-window mean, min and max of a 1-D series ([n] each; the first points use what exists).

    Vectorised with a strided view: a window of w values ending at each index.
    """
    values = np.asarray(values, dtype=np.float64)
    n = values.size
    window = max(1, min(int(window), n)) if n else 1
    if n == 0:
        return values, values, values
    padded = np.concatenate([np.full(window - 1, np.nan), values])
    windows = np.lib.stride_tricks.sliding_window_view(padded, window)  # [n, window]
    return np.nanmean(windows, axis=1), np.nanmin(windows, axis=1), np.nanmax(windows, axis=1)


def plot_training_curves(metrics_jsonl_path: str | os.PathLike, out_png: str | os.PathLike, *,
                         window: int | None = None, title: str | None = None) -> Path:
    """Training loss vs step (window mean with a min/max envelope band) and validation metrics.

    Left panel: train `loss` with a min..max band: the logged `loss_min`/`loss_max` of each log
    interval when every train record carries them, else the raw `loss` (thin), its trailing-window
    mean (line) and the window's min..max; plus `val_loss` when logged. Right panel (only when
    validation lines exist): every other `val_*` metric whose values are rates in [0, 1] (counts
    such as val_n_edges are left out). Missing keys are tolerated; a file without any `loss` still gives a
    figure that says so.

    Args:
      metrics_jsonl_path: metrics.jsonl of a run (dicts with at least "step" and "loss").
      out_png: output path.
      window: envelope window in logged points; default ~1/25 of the points (at least 1). Giving
        a window forces the rolling envelope even when loss_min/loss_max are logged.
    """
    records = read_metrics_jsonl(metrics_jsonl_path)
    steps, loss = metric_series(records, "loss")
    val_keys = sorted({k for r in records for k, v in r.items() if k.startswith("val_") and _is_number(v)})
    # the right panel shows rates (accuracy, auc, f1, ...): values within [0, 1]; counts such as
    # val_n_edges would flatten every rate to a line at zero
    other_val = [k for k in val_keys if k != "val_loss"
                 and np.all((metric_series(records, k)[1] >= 0) & (metric_series(records, k)[1] <= 1))]

    plt = _pyplot()
    n_panels = 2 if other_val else 1
    fig, axes = plt.subplots(1, n_panels, figsize=(6.0 * n_panels, 4.2), squeeze=False)
    ax = axes[0, 0]
    lmin_steps, lmin = metric_series(records, "loss_min")
    lmax_steps, lmax = metric_series(records, "loss_max")
    logged_band = (loss.size > 0 and np.array_equal(lmin_steps, steps) and np.array_equal(lmax_steps, steps)
                   and window is None)
    if logged_band:
        # the writer logged the min/max of the per-step losses of each logging interval
        ax.fill_between(steps, lmin, lmax, color=_TRUE_COLOUR, alpha=0.25, lw=0,
                        label="train min..max (steps of each log interval)")
        ax.plot(steps, loss, color=_TRUE_COLOUR, lw=1.6, label="train loss (interval mean)")
    elif loss.size:
        w = window or max(1, loss.size // 25)
        mean, lo, hi = rolling_envelope(loss, w)
        ax.plot(steps, loss, color="0.75", lw=0.6, label="train loss (per log)")
        ax.fill_between(steps, lo, hi, color=_TRUE_COLOUR, alpha=0.25, lw=0,
                        label=f"train min..max ({w}-point window)")
        ax.plot(steps, mean, color=_TRUE_COLOUR, lw=1.6, label=f"train mean ({w}-point window)")
    else:
        ax.text(0.5, 0.5, "no train loss logged", ha="center", va="center", transform=ax.transAxes)
    vsteps, vloss = metric_series(records, "val_loss")
    if vloss.size:
        ax.plot(vsteps, vloss, "o-", color=_FAKE_COLOUR, ms=3, lw=1.2, label="validation loss")
    positive = np.concatenate([loss, vloss] + ([lmin, lmax] if logged_band else []))
    if positive.size and positive.min() > 0 and positive.max() / positive.min() > 20:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title("Loss vs step")
    ax.grid(alpha=0.3)
    if loss.size or vloss.size:
        ax.legend(fontsize=8)

    if other_val:
        ax2 = axes[0, 1]
        for k in other_val:
            s, v = metric_series(records, k)
            ax2.plot(s, v, "o-", ms=3, lw=1.2, label=k[len("val_"):])
        if loss.size or vloss.size:
            ax2.set_xlim(ax.get_xlim())  # same step axis as the loss panel
        ax2.set_xlabel("step")
        ax2.set_ylabel("value")
        ax2.set_title("Validation metrics vs step")
        ax2.grid(alpha=0.3)
        ax2.legend(fontsize=8)
    fig.suptitle(title or "Training curves")
    return save_figure(fig, out_png)


# ---------------------------------------------------------------------------------------------
# Edge-score plots
# ---------------------------------------------------------------------------------------------

def _thin(x: np.ndarray, y: np.ndarray, n: int = _MAX_CURVE_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Keeps at most ~n points of a monotone curve (always its first and last point)."""
    if x.size <= n:
        return x, y
    idx = np.unique(np.r_[np.linspace(0, x.size - 1, n).astype(np.int64), x.size - 1])
    return x[idx], y[idx]


def plot_roc(scores: np.ndarray, labels: np.ndarray, out_png: str | os.PathLike, *,
             title: str | None = None) -> Path:
    """ROC curve of edge scores (true-positive rate vs false-positive rate) with its AUC.

    Left: linear axes with the chance diagonal. Right: the same curve with a log false-positive
    axis, where the working points of a tracking GNN (FPR of 1e-3..1e-2) are visible.

    Args:
      scores: float [E] edge probabilities; labels: [E] truth (1 = true edge).
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel().astype(bool)
    if scores.shape != labels.shape:
        raise InputError(f"plot_roc: scores {scores.shape} and labels {labels.shape} differ in shape")
    fpr, tpr, _ = roc_curve(scores, labels)
    fpr, tpr = _thin(fpr, tpr)
    auc = roc_auc(scores, labels)

    plt = _pyplot()
    fig, (ax, axl) = plt.subplots(1, 2, figsize=(10.5, 4.4))
    label = f"AUC = {auc:.4f}" if math.isfinite(auc) else "AUC undefined (one class)"
    ax.plot(fpr, tpr, color=_TRUE_COLOUR, lw=1.8, label=label)
    ax.plot([0, 1], [0, 1], ls="--", color="0.6", lw=1, label="chance")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.set_xlabel("false-positive rate (fake edges kept)")
    ax.set_ylabel("true-positive rate (edge efficiency)")
    ax.set_title("ROC (linear)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=9)
    keep = fpr > 0
    axl.plot(fpr[keep], tpr[keep], color=_TRUE_COLOUR, lw=1.8, label=label)
    axl.set_xscale("log")
    if keep.any():
        axl.set_xlim(max(fpr[keep].min(), 1e-6), 1)
    axl.set_ylim(0, 1.01)
    axl.set_xlabel("false-positive rate (log)")
    axl.set_ylabel("true-positive rate")
    axl.set_title("ROC (log false-positive rate)")
    axl.grid(alpha=0.3, which="both")
    axl.legend(loc="lower right", fontsize=9)
    fig.suptitle(title or f"Edge classifier ROC ({labels.size:,} edges, {int(labels.sum()):,} true)")
    return save_figure(fig, out_png)


def plot_score_histogram(scores: np.ndarray, labels: np.ndarray, out_png: str | os.PathLike, *,
                         threshold: float | None = None, bins: int = 50, title: str | None = None) -> Path:
    """Edge-score distributions of true and fake edges (log counts), with the cut if given.

    Args:
      scores: float [E] in [0, 1]; labels: [E] (1 = true edge); threshold: drawn as a vertical line.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel().astype(bool)
    if scores.shape != labels.shape:
        raise InputError(f"plot_score_histogram: scores {scores.shape} and labels {labels.shape} differ")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    edges = np.linspace(0.0, 1.0, bins + 1)
    ax.hist(scores[labels], bins=edges, histtype="step", lw=1.8, color=_TRUE_COLOUR,
            label=f"true edges ({int(labels.sum()):,})")
    ax.hist(scores[~labels], bins=edges, histtype="step", lw=1.8, color=_FAKE_COLOUR,
            label=f"fake edges ({int((~labels).sum()):,})")
    if threshold is not None:
        ax.axvline(threshold, color="0.3", ls="--", lw=1, label=f"cut {threshold:g}")
    if scores.size:
        ax.set_yscale("log")
    ax.set_xlim(0, 1)
    ax.set_xlabel("edge score")
    ax.set_ylabel("edges per bin")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9, loc="upper center")
    ax.set_title(title or "Edge score: true vs fake edges")
    return save_figure(fig, out_png)


def plot_efficiency(tables: Mapping[str, Any], variable: str, out_png: str | os.PathLike, *,
                    title: str | None = None, xlabel: str | None = None, cut_label: str = "") -> Path:
    """Track efficiency per bin with binomial (Clopper-Pearson, 68 %) error bars.

    Args:
      tables: curve label -> `gnntrack.tracks.matching.binned_efficiency` table (lo, hi, center,
        n_total, efficiency, cp_low, cp_high). Empty bins are not drawn.
      variable: 'pt' (log x axis, GeV) or 'eta'.
      cut_label: text naming the selection, shown under the title.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.6, 4.4))
    n_sets = max(len(tables), 1)
    for i, (label, t) in enumerate(tables.items()):
        ok = np.asarray(t["n_total"]) > 0
        lo, hi = np.asarray(t["lo"], float)[ok], np.asarray(t["hi"], float)[ok]
        if variable == "pt":
            lo = np.maximum(lo, 1e-2)
            x = np.sqrt(lo * hi)  # geometric bin centre on a log axis
        else:
            x = 0.5 * (lo + hi)
        # small horizontal offsets keep overlapping curves readable
        shift = (i - (n_sets - 1) / 2) * 0.08 * (hi - lo) / n_sets
        if variable == "pt":
            shift = x * (np.exp((i - (n_sets - 1) / 2) * 0.03) - 1)
        e = np.asarray(t["efficiency"], float)[ok]
        yerr = np.vstack([e - np.asarray(t["cp_low"], float)[ok], np.asarray(t["cp_high"], float)[ok] - e])
        xerr = np.vstack([x + shift - lo, hi - x - shift])
        ax.errorbar(x + shift, e, yerr=np.clip(yerr, 0, None), xerr=np.clip(xerr, 0, None), fmt="o", ms=4,
                    capsize=2, lw=1.2, label=label)
    if variable == "pt":
        ax.set_xscale("log")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel(xlabel or ("particle $p_T$ [GeV]" if variable == "pt" else r"particle $\eta$"))
    ax.set_ylabel("track efficiency")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=9, loc="best")
    name = "$p_T$" if variable == "pt" else r"$\eta$"
    ax.set_title((title or f"Track efficiency vs {name}") + (f"\n{cut_label}" if cut_label else ""), fontsize=11)
    return save_figure(fig, out_png)


def plot_threshold_scan(scan: Mapping[str, Sequence[float]], out_png: str | os.PathLike, *,
                        chosen: float | None = None, title: str | None = None) -> Path:
    """Purity and efficiency vs score threshold: edges (left) and tracks (right, when given).

    Args:
      scan: columns `threshold`, `edge_purity`, `edge_efficiency` and optionally
        `track_threshold`, `track_efficiency`, `track_purity` (1 - fake rate), `trackml_score`
        (track columns may be on a coarser threshold grid, `track_threshold`).
      chosen: the working-point threshold, drawn as a dashed line.
    """
    plt = _pyplot()
    has_tracks = "track_threshold" in scan and len(scan["track_threshold"]) > 0
    fig, axes = plt.subplots(1, 2 if has_tracks else 1, figsize=(6.0 * (2 if has_tracks else 1), 4.4),
                             squeeze=False)
    ax = axes[0, 0]
    t = np.asarray(scan["threshold"], float)
    ax.plot(t, scan["edge_purity"], color=_FAKE_COLOUR, lw=1.8, label="edge purity (precision)")
    ax.plot(t, scan["edge_efficiency"], color=_TRUE_COLOUR, lw=1.8, label="edge efficiency (recall)")
    ax.set_title("Edges")
    panels = [ax]
    if has_tracks:
        ax2 = axes[0, 1]
        tt = np.asarray(scan["track_threshold"], float)
        for key, label, colour in (("track_efficiency", "track efficiency", _TRUE_COLOUR),
                                   ("track_purity", "track purity (1 - fake rate)", _FAKE_COLOUR),
                                   ("trackml_score", "TrackML score", "tab:green")):
            if key in scan:
                ax2.plot(tt, scan[key], "o-", ms=4, lw=1.6, color=colour, label=label)
        ax2.set_title("Tracks")
        panels.append(ax2)
    for a in panels:
        if chosen is not None:
            a.axvline(chosen, color="0.3", ls="--", lw=1, label=f"working point {chosen:g}")
        a.set_xlim(0, 1)
        a.set_ylim(0, 1.02)
        a.set_xlabel("edge score threshold")
        a.set_ylabel("fraction")
        a.grid(alpha=0.3)
        a.legend(fontsize=8, loc="best")
    fig.suptitle(title or "Purity and efficiency vs threshold")
    return save_figure(fig, out_png)


def _track_colours(track_id: np.ndarray, n_hits_per_track: np.ndarray) -> np.ndarray:
    """RGBA [n] per hit: a qualitative colour per track (hashed so neighbours differ), grey for singletons."""
    import matplotlib

    palette = np.asarray(matplotlib.colormaps["tab20"].colors + matplotlib.colormaps["Dark2"].colors)
    # multiplicative hash: consecutive track ids land far apart in the palette
    index = (track_id.astype(np.uint64) * np.uint64(2654435761) % np.uint64(palette.shape[0])).astype(np.int64)
    rgba = np.ones((track_id.size, 4))
    rgba[:, :3] = palette[index]
    single = n_hits_per_track == 1
    rgba[single] = (0.6, 0.6, 0.6, 0.5)
    return rgba


def plot_event_display(x: np.ndarray, y: np.ndarray, z: np.ndarray, track_id: np.ndarray,
                       out_png: str | os.PathLike, *, title: str | None = None, max_tracks: int = 0) -> Path:
    """Hits in x-y and r-z, coloured by reconstructed track, each track's hits joined in order of r.

    Args:
      x, y, z: float [n] hit positions (mm); track_id: int [n].
      max_tracks: draw only the hits of this many randomly chosen tracks (>= 3 hits) plus every
        other hit in light grey (0 = all tracks), for readable displays of busy events.
    """
    from matplotlib.collections import LineCollection

    x, y, z = (np.asarray(a, np.float64).ravel() for a in (x, y, z))
    track_id = np.asarray(track_id, np.int64).ravel()
    r = np.hypot(x, y)
    _, inverse, counts = np.unique(track_id, return_inverse=True, return_counts=True)
    size = counts[inverse]
    shown = size >= 2
    if max_tracks and shown.any():
        tracks = np.unique(track_id[size >= 3])
        keep = np.random.default_rng(0).permutation(tracks)[:max_tracks]
        shown = np.isin(track_id, keep)
    colours = _track_colours(track_id, size)
    n_tracks = int((counts >= 2).sum())

    plt = _pyplot()
    fig, (axa, axb) = plt.subplots(1, 2, figsize=(13, 6.0), gridspec_kw={"width_ratios": [1, 1.35]})
    # segments between consecutive hits (in r) of each shown track
    order = np.lexsort((r, track_id))
    same = (track_id[order][1:] == track_id[order][:-1]) & shown[order][1:]
    a, b = order[:-1][same], order[1:][same]
    for ax, (u, v), labels in ((axa, (x, y), ("x [mm]", "y [mm]")), (axb, (z, r), ("z [mm]", "r [mm]"))):
        ax.scatter(u[~shown], v[~shown], s=1.0, c="0.75", lw=0, rasterized=True)
        seg = np.stack([np.stack([u[a], v[a]], 1), np.stack([u[b], v[b]], 1)], 1)
        ax.add_collection(LineCollection(seg, colors=colours[a], linewidths=0.6, alpha=0.8))
        ax.scatter(u[shown], v[shown], s=3.0, c=colours[shown], lw=0, rasterized=True)
        ax.set_xlabel(labels[0])
        ax.set_ylabel(labels[1])
        ax.grid(alpha=0.25)
        ax.autoscale()
    axa.set_aspect("equal")
    axa.set_title("x-y (transverse view)")
    axb.set_title("r-z (longitudinal view)")
    what = f"{n_tracks:,} tracks with >= 2 hits, {int((counts == 1).sum()):,} unassigned hits (grey)"
    if max_tracks:
        what += f"; {int(min(max_tracks, len(np.unique(track_id[size >= 3])))):,} random tracks coloured"
    fig.suptitle((title or "Event display: hits coloured by reconstructed track") + f"\n{what}", fontsize=11)
    return save_figure(fig, out_png)
