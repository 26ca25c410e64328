"""A run directory's report: report.md with its training-curve and ROC plots.

`gnntrack train` and `gnntrack quickstart` write it after a run; `report_markdown` is the pure
text, `write_report` draws the plots and writes both atomically.
"""

from __future__ import annotations

import os
from pathlib import Path

from gnntrack.config import CONFIG_FILE_NAME, load_config
from gnntrack.io.atomic import write_text_atomic
from gnntrack.report.plots import plot_roc, plot_training_curves
from gnntrack.train.loop import load_scores
from gnntrack.train.writers import METRICS_FILE_NAME


def _fmt(value, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if value != value else f"{value:.{digits}f}"
    return str(value)


def tracks_markdown(tracks: dict) -> list[str]:
    """The report's tracking section from `gnntrack evaluate`'s metrics (pure)."""
    t, files = tracks["tracks"], tracks.get("files", {})
    cuts = tracks.get("run", {}).get("graph_truth_cuts") or {}
    lines = ["## Tracks on the held-out events", "",
             f"Tracks built from the edge scores ({t['method']}, cut {t['cut']:g}) on {tracks['n_events']} test "
             f"events; efficiency and fake rate under {t['matching']['efficiency'].replace('_', ' ')} matching, "
             f"particles with pT >= {t['reconstructable']['pt_min_gev']:g} GeV and >= "
             f"{t['reconstructable']['min_hits']} hits in the graph; 95 % bootstrap intervals over events.", "",
             "| TrackML score | on graph hits | ceiling of the graph | track efficiency | fake rate | duplicate rate |",
             "|---:|---:|---:|---:|---:|---:|"]
    ci = t.get("intervals", {})

    def cell(name):
        lo_hi = ci.get(name)
        return _fmt(t.get(name)) + (f" [{lo_hi[0]:.3f}, {lo_hi[1]:.3f}]" if lo_hi else "")

    lines.append("| " + " | ".join(cell(n) for n in ("trackml_score", "trackml_score_graph_hits",
                                                     "trackml_score_ceiling", "efficiency", "fake_rate",
                                                     "duplicate_rate")) + " |")
    if cuts:
        lines += ["", f"The graphs keep only what the truth cuts {', '.join(f'{k}={v}' for k, v in cuts.items())} "
                      "leave: hits outside them are singletons in the submission, so the whole-event TrackML "
                      "score is bounded by the ceiling column."]
    lines += ["", "Files: `tracks/metrics.json`, `tracks/events.csv`, `tracks/submissions/`, `tracks/plots/`.", ""]
    if "event_display" in files:
        lines += ["### Event display", "", f"![event display](tracks/{files['event_display']})", ""]
    return lines


def report_markdown(result: dict, config, *, title: str, plots: dict[str, str],
                    tracks: dict | None = None) -> str:
    """report.md text for a finished run (pure: no I/O); `tracks`: `gnntrack evaluate`'s metrics
    of the test events, shown in their own section."""
    lines = [f"# {title}", ""]
    lines += ["Edge classification on held-out simulated events (threshold 0.5; efficiency = recall, "
              "purity = precision).", ""]
    lines += ["| set | edges | efficiency | purity | accuracy | F1 | AUC |", "|---|---:|---:|---:|---:|---:|---:|"]
    for label, prefix in (("validation", "val_"), ("test (held-out events)", "test_"),
                          ("test, full events", "test_full_")):
        if f"{prefix}recall" in result:
            lines.append(f"| {label} | {result.get('n_' + prefix + 'edges', 0):,} | {_fmt(result[prefix + 'recall'])} | "
                         f"{_fmt(result[prefix + 'precision'])} | {_fmt(result[prefix + 'accuracy'])} | "
                         f"{_fmt(result[prefix + 'f1'])} | {_fmt(result[prefix + 'auc'])} |")
    thresholds = result.get("test_thresholds") or {}
    if thresholds:
        lines += ["", "Test set at other thresholds:", "", "| threshold | efficiency | purity | F1 |",
                  "|---:|---:|---:|---:|"]
        for t, m in thresholds.items():
            lines.append(f"| {t} | {_fmt(m['recall'])} | {_fmt(m['precision'])} | {_fmt(m['f1'])} |")
    data = config.data
    lines += ["", "## Run", "",
              f"- data: {data.source}, {data.n_train} train / {data.n_val} validation / {data.n_test} test events"
              + (f", pileup {data.simulation.pileup:g}, seed {data.seed}" if data.source == "simulate" else ""),
              f"- graphs: selection {config.graph.selection}, pT > {config.graph.pt_min:g} GeV, "
              f"{config.graph.n_phi_sections} x {config.graph.n_eta_sections} sections",
              f"- model: {config.model.name}, "  # a registered model may have neither key
              + "".join(f"{label.format(config.model[key])}, " for key, label in
                        (("hidden", "hidden {}"), ("n_iters", "{} iterations")) if key in config.model)
              + f"{result.get('n_params', 0):,} parameters",
              f"- optimizer: {config.optimizer.name}, lr {config.optimizer.lr:g} ({config.optimizer.schedule}), "
              f"{config.batching.graphs_per_step} graphs per step",
              f"- steps: {result.get('steps')} of {result.get('total_steps')}; best {config.train.best_metric} "
              f"{_fmt(result.get('best_value'))} at step {result.get('best_step')}",
              f"- time: {_fmt(result.get('seconds'), 1)} s in all, {_fmt(result.get('train_seconds'), 1)} s "
              f"training, on {result.get('n_devices')} device(s)",
              f"- padding utilisation {_fmt(result.get('utilisation'), 3)} (real / padded edges) with "
              f"{result.get('n_compiled_shapes')} compiled shape(s)",
              "", "Files: `config.json` (resolved config), `metrics.jsonl`, `tensorboard/`, `checkpoints/`, "
              "`result.json`, `test_scores.npz`.", ""]
    if tracks is not None:
        lines += tracks_markdown(tracks)
    for caption, name in plots.items():
        lines += [f"## {caption}", "", f"![{caption}]({name})", ""]
    return "\n".join(lines)


def write_report(workdir: str | os.PathLike, result: dict, *, title: str = "gnntrack run",
                 tracks: dict | None = None) -> Path:
    """Writes loss.png, roc.png and report.md into the run directory; returns report.md's path.

    Plots that cannot be drawn (e.g. no test scores) are left out of the report and named in it.
    """
    workdir = Path(workdir)
    config = load_config(workdir / CONFIG_FILE_NAME)
    plots: dict[str, str] = {}
    plot_training_curves(workdir / METRICS_FILE_NAME, workdir / "loss.png", title=title + ": training curves")
    plots["Training curves"] = "loss.png"
    scores_path = workdir / "test_scores.npz"
    if scores_path.exists():
        scores = load_scores(scores_path)
        plot_roc(scores["scores"], scores["labels"], workdir / "roc.png",
                 title=f"{title}: test edges ROC (AUC {_fmt(result.get('test_auc'))})")
        plots["ROC on held-out events"] = "roc.png"
    path = workdir / "report.md"
    write_text_atomic(path, report_markdown(result, config, title=title, plots=plots, tracks=tracks))
    return path
