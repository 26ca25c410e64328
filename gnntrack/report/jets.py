"""Writes a jet tagger's evaluation (`gnntrack.jets.evaluate`) and comparisons of several taggers.

    write_jets_report(out_dir, metrics, scores, labels)     # metrics.json, report.md, roc.npz, plots/
    write_jets_comparison(out_dir, {"teacher": dir1, "student": dir2})   # table + all ROC curves

ROC curves are drawn as the field draws them for taggers: background rejection 1/eps_B (log)
against signal efficiency eps_S. Every file is written atomically.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Mapping

import numpy as np

from gnntrack.errors import InputError
from gnntrack.io.atomic import atomic_path, write_json_atomic, write_text_atomic
from gnntrack.report.plots import _pyplot, save_figure
from gnntrack.train.metrics import roc_curve

CURVE_POINTS = 400  # points kept per ROC curve in roc.npz
LABELS = {"model": "model", "mass_window": "jet-mass window"}


def rejection_curve(scores: np.ndarray, labels: np.ndarray, n: int = CURVE_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """(eps_S, 1/eps_B) at up to n signal efficiencies in (0, 1]; eps_B = 0 points are dropped
    (an infinite rejection cannot be drawn)."""
    fpr, tpr, _ = roc_curve(scores, labels)
    keep = (fpr > 0) & (tpr > 0)
    fpr, tpr = fpr[keep], tpr[keep]
    if tpr.size > n:
        idx = np.unique(np.searchsorted(tpr, np.linspace(tpr[0], tpr[-1], n)).clip(0, tpr.size - 1))
        fpr, tpr = fpr[idx], tpr[idx]
    return tpr, 1.0 / fpr


def plot_rejection_curves(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], out_png: str | os.PathLike,
                          *, title: str) -> Path:
    """1/eps_B (log) vs eps_S, one line per name; the working points 0.3 and 0.5 marked."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    for name, (eff, rejection) in curves.items():
        ax.plot(eff, rejection, lw=1.6, label=name)
    for wp in (0.3, 0.5):
        ax.axvline(wp, color="0.6", ls=":", lw=1)
    ax.set_yscale("log")
    ax.set_xlim(0, 1)
    ax.set_xlabel("signal efficiency eps_S (top jets kept)")
    ax.set_ylabel("background rejection 1/eps_B (QCD)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=9)
    ax.set_title(title)
    return save_figure(fig, out_png)


def plot_jet_scores(scores: np.ndarray, labels: np.ndarray, out_png: str | os.PathLike, *, title: str) -> Path:
    """Histograms of the model's score for top (signal) and QCD jets, log counts."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    bins = np.linspace(0.0, 1.0, 51)
    signal = labels.astype(bool)
    ax.hist(scores[signal], bins=bins, histtype="step", lw=1.6, label=f"top ({int(signal.sum()):,})")
    ax.hist(scores[~signal], bins=bins, histtype="step", lw=1.6, label=f"QCD ({int((~signal).sum()):,})")
    ax.set_yscale("log")
    ax.set_xlabel("tagger score")
    ax.set_ylabel("jets per bin")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9, loc="upper center")
    ax.set_title(title)
    return save_figure(fig, out_png)


def format_value(metrics: Mapping, intervals: Mapping, key: str) -> str:
    """'0.9703 [0.9669, 0.9735]' (rejections with one decimal); '-' when absent or undefined."""
    value = metrics.get(key)
    if value is None or not math.isfinite(value):
        return "-"
    digits = 1 if key.startswith("rejection") else 4
    low_high = intervals.get(key)
    text = f"{value:.{digits}f}"
    return text + (f" [{low_high[0]:.{digits}f}, {low_high[1]:.{digits}f}]" if low_high else "")


METRIC_COLUMNS = (("accuracy", "accuracy"), ("auc", "AUC"), ("rejection_0.3", "1/eps_B @ eps_S=0.3"),
                  ("rejection_0.5", "1/eps_B @ eps_S=0.5"))


def cost_cells(costs: Mapping) -> list[str]:
    """Parameters, MFLOPs per jet and microseconds per jet at each latency batch."""
    latency = costs.get("latency_s_per_jet", {})
    return [f"{costs['parameters']:,}", f"{costs['flops_per_jet'] / 1e6:.2f}",
            *(f"{latency[b] * 1e6:.1f}" for b in latency)]


def jets_markdown(metrics: Mapping, plots: Mapping[str, str]) -> str:
    """report.md of one evaluation."""
    level = metrics["bootstrap"]["level"]
    run, data, costs = metrics["run"], metrics["input"], metrics["costs"]
    lines = [f"# Jet tagging: {run['model']} (step {run['step']}, {run['checkpoint']} checkpoint)", "",
             f"Jets: {data['n_jets']:,} ({data['n_signal']:,} top) from {data['source']}; "
             f"{level:.0%} bootstrap intervals over jets ({metrics['bootstrap']['n_boot']} resamples).", "",
             "| tagger | " + " | ".join(label for _, label in METRIC_COLUMNS) + " |",
             "| --- |" + " --- |" * len(METRIC_COLUMNS)]
    for name, d in metrics["scorers"].items():
        lines.append(f"| {LABELS.get(name, name)} | "
                     + " | ".join(format_value(d["metrics"], d["intervals"], k) for k, _ in METRIC_COLUMNS) + " |")
    diff = metrics["difference"]["intervals"]
    lines.append(f"| difference ({metrics['difference']['of']}) | "
                 + " | ".join((f"[{diff[k][0]:+.4f}, {diff[k][1]:+.4f}]" if k in diff else "-")
                              for k, _ in METRIC_COLUMNS) + " |")
    batches = list(costs["latency_s_per_jet"])
    lines += ["", "| parameters | MFLOPs / jet | " + " | ".join(f"us / jet, batch {b}" for b in batches) + " |",
              "| --- | --- |" + " --- |" * len(batches), "| " + " | ".join(cost_cells(costs)) + " |", "",
              f"Costs on {costs['device']} ({costs['cpu']}): FLOPs from XLA's cost analysis of the compiled "
              "forward pass (padded constituents included), latency = median wall time of the jitted forward "
              "pass per jet.", ""]
    lines += [f"![{name}]({path})" for name, path in plots.items()]
    return "\n".join(lines) + "\n"


def write_jets_report(out_dir: str | os.PathLike, metrics: dict, scores: Mapping[str, np.ndarray],
                      labels: np.ndarray, *, plots: bool = True) -> None:
    """metrics.json, roc.npz (eps_S and 1/eps_B per scorer), report.md and plots/ in out_dir."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    curves = {name: rejection_curve(s, labels) for name, s in scores.items()}
    with atomic_path(out / "roc.npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **{f"{name}_{axis}": c[i] for name, c in curves.items()
                           for i, axis in enumerate(("eff_s", "rejection"))})
    drawn = {}
    if plots:
        title = f"{metrics['run']['model']} on {metrics['input']['n_jets']:,} jets"
        plot_rejection_curves({LABELS.get(n, n): c for n, c in curves.items()}, out / "plots" / "roc.png", title=title)
        plot_jet_scores(scores["model"], labels, out / "plots" / "scores.png", title=title)
        drawn = {"ROC": "plots/roc.png", "scores": "plots/scores.png"}
    write_json_atomic(out / "metrics.json", metrics)
    write_text_atomic(out / "report.md", jets_markdown(metrics, drawn))


def read_evaluation(evaluation_dir: str | os.PathLike) -> tuple[dict, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """(metrics, name -> (eps_S, 1/eps_B)) of an evaluation directory; InputError naming the file
    when it is missing."""
    path = Path(evaluation_dir)
    try:
        metrics = json.loads((path / "metrics.json").read_text(encoding="utf-8"))
        with np.load(path / "roc.npz") as f:
            curves = {name: (f[f"{name}_eff_s"], f[f"{name}_rejection"]) for name in metrics["scorers"]}
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"{path}: not a jets evaluation (metrics.json / roc.npz unreadable: {exc}); "
                         "run gnntrack evaluate on the jets run first") from None
    return metrics, curves


def comparison_markdown(evaluations: Mapping[str, dict]) -> str:
    """One table: each named model's metrics with intervals and its costs, then the mass baseline
    of the first evaluation (all evaluations should be on the same jets)."""
    any_metrics = next(iter(evaluations.values()))
    batches = list(any_metrics["costs"]["latency_s_per_jet"])
    head = ["model", *(label for _, label in METRIC_COLUMNS), "parameters", "MFLOPs / jet",
            *(f"us / jet (batch {b})" for b in batches)]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for name, m in evaluations.items():
        d = m["scorers"]["model"]
        lines.append(f"| {name} ({m['run']['model']}) | "
                     + " | ".join(format_value(d["metrics"], d["intervals"], k) for k, _ in METRIC_COLUMNS)
                     + " | " + " | ".join(cost_cells(m["costs"])) + " |")
    base = any_metrics["scorers"]["mass_window"]
    lines.append("| jet-mass window | " + " | ".join(format_value(base["metrics"], base["intervals"], k)
                                                     for k, _ in METRIC_COLUMNS) + " |" + " - |" * (2 + len(batches)))
    data = any_metrics["input"]
    level = any_metrics["bootstrap"]["level"]
    return ("\n".join(lines) + f"\n\n{data['n_jets']:,} jets from {data['source']}; {level:.0%} bootstrap "
            f"intervals over jets; costs on {any_metrics['costs']['device']} ({any_metrics['costs']['cpu']}).\n")


def write_jets_comparison(out_dir: str | os.PathLike, evaluation_dirs: Mapping[str, str | os.PathLike], *,
                          plots: bool = True) -> str:
    """comparison.md (+ comparison.json, plots/roc_comparison.png with every model's ROC curve and
    the mass baseline) in out_dir from named evaluation directories; returns the markdown."""
    evaluations, curves = {}, {}
    for name, path in evaluation_dirs.items():
        evaluations[name], c = read_evaluation(path)
        curves[name] = c["model"]
        curves.setdefault(LABELS["mass_window"], c["mass_window"])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    text = comparison_markdown(evaluations)
    if plots:
        plot_rejection_curves(curves, out / "plots" / "roc_comparison.png", title="Top tagging: ROC")
        text += "\n![ROC](plots/roc_comparison.png)\n"
    write_json_atomic(out / "comparison.json", evaluations)
    write_text_atomic(out / "comparison.md", text)
    return text
