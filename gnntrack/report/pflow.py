"""The report of `gnntrack evaluate` on particle-flow events: report.md, plots and metrics.json.

    files = write_pflow_report(out_dir, metrics, plot_data, plots=True)

`metrics` and `plot_data` come from `gnntrack.pflow.evaluate.evaluate_particle_flow` (computed
there; this module only draws and writes). Plots: pT_reco / pT_gen of matched jets and
MET_reco / MET_gen, one histogram per reconstruction (ML and baseline) on common bins, and the
per-class efficiency and fake rate as bars with their bootstrap intervals. Every file is written
atomically; the returned {name: path} is also stored in metrics['files'].
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import numpy as np

from gnntrack.io.atomic import write_json_atomic, write_text_atomic
from gnntrack.pflow.types import DIFFERENCE_KEYS, PARTICLE_CLASSES
from gnntrack.report.plots import _pyplot, save_figure

RATIO_RANGE = (0.0, 2.5)  # pT_reco / pT_gen and MET_reco / MET_gen axes; beyond: overflow bin
LABELS = {"ml": "ML (MLPF)", "baseline": "rule-based baseline"}


def _label(name: str) -> str:
    return LABELS.get(name, name)


def plot_ratio_histograms(ratios: Mapping[str, np.ndarray], out_png: str | os.PathLike, *, xlabel: str,
                          title: str, bins: int = 50) -> Path:
    """One step histogram per reconstruction of `ratios` {name: float [M]} on common bins over
    RATIO_RANGE (values above it counted in the last bin), its median and IQR / median in the
    legend; normalised to unit area so that different counts compare."""
    plt = _pyplot()
    edges = np.linspace(*RATIO_RANGE, bins + 1)
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, ratio in ratios.items():
        ratio = np.asarray(ratio, np.float64)
        if not len(ratio):
            continue
        q25, median, q75 = np.percentile(ratio, [25, 50, 75])
        ax.hist(np.clip(ratio, edges[0], edges[-1] - 1e-9), bins=edges, histtype="step", density=True, lw=1.5,
                label=f"{_label(name)}: median {median:.3f}, IQR/median {(q75 - q25) / median:.3f} ({len(ratio)})")
    ax.axvline(1.0, color="grey", lw=0.8, ls=":")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:  # no matched jet at all: an empty plot, no legend
        ax.legend(fontsize=8)
    return save_figure(fig, out_png)


def plot_class_rates(algorithms: Mapping[str, Mapping], out_png: str | os.PathLike) -> Path:
    """Per-class efficiency (left) and fake rate (right), grouped bars per reconstruction with
    their bootstrap intervals as error bars (a class never predicted has no fake-rate bar)."""
    plt = _pyplot()
    classes = PARTICLE_CLASSES[1:]
    x = np.arange(len(classes))
    width = 0.8 / max(len(algorithms), 1)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key in zip(axes, ("efficiency", "fake_rate")):
        for i, (name, metrics) in enumerate(algorithms.items()):
            values = np.array([metrics["classes"][c][key]["value"] for c in classes])
            lo = np.array([metrics["classes"][c][key]["ci_low"] for c in classes])
            hi = np.array([metrics["classes"][c][key]["ci_high"] for c in classes])
            err = np.nan_to_num(np.stack([values - lo, hi - values]), nan=0.0)
            ax.bar(x + (i - (len(algorithms) - 1) / 2) * width, np.nan_to_num(values), width, yerr=err, capsize=2,
                   label=_label(name))
        ax.set_xticks(x, [c.replace("_", " ") for c in classes], rotation=20)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel(key.replace("_", " ") + " (per element)")
        ax.legend(fontsize=8)
    return save_figure(fig, out_png)


def _changes(run: Mapping) -> str:
    """' with dense=true, ...' for a run evaluated with model changes, else ''."""
    changes = run.get("model_overrides") or []
    return f" with {', '.join(changes)}" if changes else ""


def format_interval(d: Mapping, digits: int = 3) -> str:
    """'value [ci_low, ci_high]' of an interval dict; 'n/a' for nan (undefined)."""
    value, lo, hi = d["value"], d["ci_low"], d["ci_high"]
    if not np.isfinite(value):
        return "n/a"
    return f"{value:.{digits}f}" + (f" [{lo:.{digits}f}, {hi:.{digits}f}]" if np.isfinite(lo) else "")


def pflow_markdown(metrics: Mapping, plots: Mapping[str, str]) -> str:
    """report.md: settings, jets and MET per reconstruction, the differences ML - baseline (and
    ML - a compared run) and the per-class table (values with their bootstrap intervals)."""
    s, b, algorithms = metrics["settings"], metrics["bootstrap"], metrics["algorithms"]
    names = list(algorithms)
    run = metrics.get("run", {})
    lines = ["# gnntrack evaluate: particle flow", ""]
    if run:
        lines += [f"Run `{run['workdir']}`, checkpoint {run['checkpoint']} (step {run['step']}), model "
                  f"{run['model']}{_changes(run)}; events: {metrics.get('input', {}).get('dir', '?')} "
                  f"({metrics.get('input', {}).get('selection', 'all events')}).", ""]
    other = metrics.get("compare")
    if other:
        lines += [f"Compared with run `{other['workdir']}` (column '{other['name']}'), checkpoint "
                  f"{other['checkpoint']} (step {other['step']}), model {other['model']}{_changes(other)}, "
                  f"on the same events.", ""]
    lines += [f"{metrics['n_events']} events, {metrics['n_particles_gen']} target particles. Jets: anti-kT "
              f"R = {s['jet_radius']} of each particle list; target jets with pT > {s['jet_pt_min']} GeV and "
              f"|eta| < {s['jet_eta_max']}, matched to the nearest reco jet within delta R < {s['match_dr']}. "
              f"MET ratio over events with target MET > {s['met_min_gev']} GeV. Intervals: "
              f"{b['level']:.0%} bootstrap over events ({b['n_boot']} resamples).", "",
              "| | " + " | ".join(_label(n) for n in names) + " |", "|---" * (len(names) + 1) + "|"]
    rows = [("jet response (median pT_reco/pT_gen)", "jets", "response"),
            ("jet resolution (IQR/median)", "jets", "resolution"),
            ("jet matching efficiency", "jets", "matching_efficiency"),
            ("MET response (median)", "met", "response"), ("MET resolution (IQR/median)", "met", "resolution"),
            ("MET sigma per component (GeV)", "met", "sigma_gev")]
    for label, group, key in rows:
        lines.append(f"| {label} | " + " | ".join(format_interval(algorithms[n][group][key]) for n in names) + " |")
    lines.append("| matched / target jets | " + " | ".join(
        f"{algorithms[n]['jets']['n_matched']} / {algorithms[n]['jets']['n_gen_jets']}" for n in names) + " |")
    for diff in metrics.get("differences", ()):
        lines += ["", f"Difference {diff['of']} (same resamples; negative = the first is better for resolutions):", ""]
        lines += [f"- {key.replace('_', ' ')}: {format_interval(diff[key])}" for key in DIFFERENCE_KEYS]
    lines += ["", "Per element, class must match: efficiency = predicted c among true c, fake rate = not c "
              "among predicted c.", "",
              "| class | " + " | ".join(f"{_label(n)} efficiency | {_label(n)} fake rate" for n in names)
              + " | true elements |", "|---" * (2 * len(names) + 2) + "|"]
    for c in PARTICLE_CLASSES[1:]:
        cells = [f"{format_interval(algorithms[n]['classes'][c]['efficiency'])} | {format_interval(algorithms[n]['classes'][c]['fake_rate'])}"
                 for n in names]
        lines.append(f"| {c} | " + " | ".join(cells) + f" | {algorithms[names[0]]['classes'][c]['n_true']} |")
    if plots:
        lines += [""] + [f"![{name}]({path})" for name, path in plots.items()]
    return "\n".join(lines) + "\n"


def write_pflow_report(out_dir: str | os.PathLike, metrics: dict, plot_data: Mapping, *, plots: bool = True
                       ) -> dict[str, str]:
    """Writes plots/*.png (unless `plots` is False), report.md and metrics.json into `out_dir`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    recos = plot_data["reconstructions"]
    drawn: dict[str, str] = {}
    if plots:
        (out_dir / "plots").mkdir(exist_ok=True)
        drawn["jet_response"] = plot_ratio_histograms(
            {n: r.jet_ratio for n, r in recos.items()}, out_dir / "plots" / "jet_response.png",
            xlabel="pT_reco / pT_gen (matched jets)", title="jet response")
        drawn["met_response"] = plot_ratio_histograms(
            {n: r.met_ratio for n, r in recos.items()}, out_dir / "plots" / "met_response.png",
            xlabel="MET_reco / MET_gen", title="missing E_T response")
        drawn["class_rates"] = plot_class_rates(metrics["algorithms"], out_dir / "plots" / "class_rates.png")
    relative = {name: str(Path(path).relative_to(out_dir)) for name, path in drawn.items()}
    write_text_atomic(out_dir / "report.md", pflow_markdown(metrics, relative))
    files = {**relative, "report": "report.md", "metrics": "metrics.json"}
    metrics["files"] = files
    write_json_atomic(out_dir / "metrics.json", metrics)
    return {name: str(out_dir / path) for name, path in files.items()}
