"""The report of `gnntrack evaluate` on tracking events: CSV tables, submissions and plots.

    files = write_evaluation_report(out_dir, metrics, tables, results, scores, labels, config, workdir)

`tables` comes from `gnntrack.tracks.evaluate.evaluation_tables` (computed there; this module
only writes). Track efficiency: vs pT and eta always, vs energy when the evaluation asks for it.
Every file is written atomically; the returned {name: path} is also stored, relative to
`out_dir`, in metrics['files'].
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import ml_collections
import numpy as np
import pandas as pd

from gnntrack.io.atomic import atomic_path
from gnntrack.io.event import event_prefix_name
from gnntrack.report import plots
from gnntrack.tracks import score as ts

TRACK_SCAN_FILE = "threshold_scan_tracks.csv"  # track metrics per scanned cut (the chain tunes on it)

MATCHING_LABELS = {"double_majority": "double majority (TrackML)", "perfect": "perfect"}


def write_evaluation_report(out_dir: Path, metrics: dict, tables: dict[str, Any], results: Sequence,
                            all_scores: np.ndarray, all_labels: np.ndarray, config: ml_collections.ConfigDict,
                            workdir: Path) -> dict[str, str]:
    """Writes events.csv, efficiency tables, the threshold scans, submissions and plots."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}

    def write_csv(name: str, table: pd.DataFrame) -> None:
        with atomic_path(out_dir / name) as tmp:
            table.to_csv(tmp, index=False)
        files[name] = str(out_dir / name)

    write_csv("events.csv", tables["events"])
    for variable, per_scheme in tables["efficiency"].items():
        write_csv(f"efficiency_{variable}.csv", pd.concat(
            [t.assign(matching=s) for s, t in per_scheme.items()], ignore_index=True))
    write_csv("threshold_scan_edges.csv", tables["edge_scan"])
    write_csv(TRACK_SCAN_FILE, tables["track_scan"])
    if config.write_submissions:
        for r in results:
            name = f"submissions/{event_prefix_name(r.row['event_id'])}-submission.csv"
            ts.write_submission(r.submission, out_dir / name)
        files["submissions"] = str(out_dir / "submissions")
    if config.plots:
        files.update(_write_plots(out_dir / "plots", tables, results, all_scores, all_labels, config, workdir))
    metrics["files"] = {k: os.path.relpath(v, out_dir) for k, v in files.items()}
    return files


def _write_plots(p: Path, tables: dict[str, Any], results: Sequence, all_scores: np.ndarray,
                 all_labels: np.ndarray, config: ml_collections.ConfigDict, workdir: Path) -> dict[str, str]:
    files: dict[str, str] = {}
    n_ev = len(results)
    files["roc"] = str(plots.plot_roc(all_scores, all_labels, p / "roc.png",
                                      title=f"Edge classifier ROC ({n_ev} events, {all_labels.size:,} edges)"))
    files["score_histogram"] = str(plots.plot_score_histogram(all_scores, all_labels, p / "score_histogram.png",
                                                              threshold=config.threshold))
    m = config.matching
    labels = {**MATCHING_LABELS, "lhc": f"LHC (purity >= {m.lhc_purity:g})"}
    for variable, cut in (("pt", f"|eta| <= {m.eta_max:g}, >= {m.min_hits} hits; {n_ev} events"),
                          ("eta", f"pT >= {m.pt_min:g} GeV, >= {m.min_hits} hits; {n_ev} events")):
        tabs = {labels[s]: t for s, t in tables["efficiency"][variable].items()}
        files[f"efficiency_{variable}"] = str(plots.plot_efficiency(
            tabs, variable, p / f"efficiency_{variable}.png", cut_label=cut))
    if "energy" in tables["efficiency"]:
        tabs = {labels[s]: t for s, t in tables["efficiency"]["energy"].items()}
        files["efficiency_energy"] = str(plots.plot_efficiency(
            tabs, "energy", p / "efficiency_energy.png", xlabel="particle energy [GeV]",
            title="Track efficiency vs energy", cut_label=f">= {m.min_hits} hits, no pT / eta cut; {n_ev} events"))
    edge_scan, track_scan = tables["edge_scan"], tables["track_scan"]
    scan = {"threshold": edge_scan["threshold"], "edge_purity": edge_scan["edge_purity"],
            "edge_efficiency": edge_scan["edge_efficiency"]}
    if len(track_scan):
        scan.update(track_threshold=track_scan["threshold"], track_efficiency=track_scan["track_efficiency"],
                    track_purity=track_scan["track_purity"], trackml_score=track_scan["trackml_score_graph_hits"])
    files["threshold_scan"] = str(plots.plot_threshold_scan(
        scan, p / "threshold_scan.png", chosen=config.threshold,
        title=f"Purity and efficiency vs threshold ({config.method}; tracks: "
              f"{config.headline_matching.replace('_', '-')} matching, TrackML score on graph hits)"))
    metrics_jsonl = Path(workdir) / "metrics.jsonl"
    if metrics_jsonl.exists():
        files["training_curves"] = str(plots.plot_training_curves(metrics_jsonl, p / "training_curves.png"))
    if results and results[0].display is not None:
        d = results[0].display
        n_tracks = int((np.bincount(d["track_id"]) >= 3).sum()) if d["track_id"].size else 0
        max_tracks = int(config.display_max_tracks) if n_tracks > int(config.display_max_tracks) else 0
        files["event_display"] = str(plots.plot_event_display(
            d["x"], d["y"], d["z"], d["track_id"], p / "event_display.png", max_tracks=max_tracks,
            title=f"Event {results[0].row['event_id']}: graph hits coloured by reconstructed track "
                  f"({config.method}, cut {config.threshold:g})"))
    return files
