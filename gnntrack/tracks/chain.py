"""The whole-event chain: events -> graphs (the run's graph config: metric learning + filter, or
geometric) -> GNN edge scores -> tracks on every hit -> one TrackML submission and the numbers.

    result = reconstruct("runs/whole_event", "data/events", "runs/whole_event/reconstruct")

It is `gnntrack evaluate` (gnntrack.tracks.evaluate.evaluate_run: the same graphs, prediction
path, track building, metrics, report and per-event submissions) with the whole-event summary on
top: the per-event submissions joined into `submission.csv` (event_id, hit_id, track_id; every
hit of every event once, the TrackML submission format) and `whole_event.json` with

  trackml_score          mean over events of the TrackML score of the whole-event submission;
  trackml_score_ceiling  the same for perfect tracks on the graph's hits (what the graph allows);
  efficiency_pt1, efficiency_pt0p5   double-majority track efficiency of reconstructable
                         particles (|eta| <= eta_max, >= min_hits graph hits) with pT >= 1 and
                         >= 0.5 GeV;
  fake_rate              double-majority fake rate of the candidate tracks (it does not depend on pT);
  edges_per_event, seconds_per_event, graph (method, filter file, selection, the overrides of
                         the run's graph config it ran with);
  tracks                 the track building's method and edge cut, and, when the cut was tuned,
                         the tuning events and the score each scanned cut gave there.

The edge cut of the track building is either given (`threshold`) or tuned on other events
(`reconstruct(..., tune_dir=...)`): the chain first runs on those events, takes the scanned cut
(`track_thresholds`) with the highest mean TrackML score there, and uses it on `input_dir`; the
evaluated events never choose their own cut.

The embedding and filter files that the run's graph config names by a relative path are looked
for in the run directory first (as learned layer maps are), so a run directory is self-contained.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import ml_collections
import numpy as np
import pandas as pd

from gnntrack.config import CONFIG_FILE_NAME
from gnntrack.errors import InputError
from gnntrack.io.atomic import atomic_path, write_json_atomic
from gnntrack.io.event import event_prefix_name
from gnntrack.report.evaluation import TRACK_SCAN_FILE
from gnntrack.tracks.evaluate import default_evaluation_config, evaluate_run

SUBMISSION_NAME = "submission.csv"
SUMMARY_NAME = "whole_event.json"
TUNING_DIR = "tuning"
# pT bin edges (GeV) of the efficiency table: the efficiencies above 0.5 and 1 GeV are sums of
# its bins; the last edge is beyond any simulated or TrackML particle.
PT_BINS = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 100.0, 1.0e5)
PT_THRESHOLDS = {"efficiency_pt1": 1.0, "efficiency_pt0p5": 0.5}


def default_chain_config() -> ml_collections.ConfigDict:
    """The evaluation config the chain runs with: headline efficiency at pT >= 1 GeV, the pT
    table reaching every particle, per-event submissions written (they make submission.csv)."""
    c = default_evaluation_config()
    c.matching.pt_min = 1.0
    c.matching.pt_bins = PT_BINS
    c.n_boot = 200
    # finer at low cuts, where an all-pT graph's best track cut has been (the tuning scans these)
    c.track_thresholds = (0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
    return c


def best_cut(scan: pd.DataFrame) -> float:
    """The cut of a track-threshold scan (threshold_scan_tracks.csv: threshold,
    trackml_score_graph_hits per row) with the highest mean TrackML score; ties go to the higher
    cut (fewer, purer tracks). Per event, the whole-event score is the graph-hit score times a
    constant (the graph's share of the event's weight), so both rank the cuts alike."""
    scores = scan["trackml_score_graph_hits"].to_numpy(float)
    if not len(scores) or not np.isfinite(scores).any():
        raise InputError("the tuning events gave no track-threshold scan with a finite TrackML score")
    best = np.nanmax(scores)
    return float(scan["threshold"].to_numpy(float)[scores == best].max())


def tune_cut(workdir: Path, tune_dir: Path, out_dir: Path, config: ml_collections.ConfigDict) -> dict[str, Any]:
    """Runs the chain's evaluation on `tune_dir` (report in `out_dir`) and returns the chosen cut
    with the scan it came from: {cut, events, scan: {threshold: TrackML score}}."""
    tuning = config.copy_and_resolve_references()
    tuning.update(write_submissions=False, plots=False)
    metrics = evaluate_run(workdir, tune_dir, out_dir, config=tuning)
    scan = pd.read_csv(out_dir / TRACK_SCAN_FILE)
    return {"cut": best_cut(scan), "events": str(tune_dir), "n_events": int(metrics["n_events"]),
            "scan": {f"{t:g}": float(v) for t, v in zip(scan["threshold"], scan["trackml_score_graph_hits"])}}


def efficiency_above(table: pd.DataFrame, pt_min: float, scheme: str = "double_majority") -> float:
    """Pooled efficiency of the particles with pT >= pt_min (GeV) from an efficiency_pt table
    (lo, n_total, n_matched, matching per row); nan when no particle is there. pt_min must be a
    bin edge."""
    rows = table[(table["matching"] == scheme) & (table["lo"] >= pt_min - 1e-12)]
    total = int(rows["n_total"].sum())
    return float(rows["n_matched"].sum()) / total if total else math.nan


def write_joined_submission(submission_dir: Path, event_ids, path: Path) -> Path:
    """Joins the per-event submission CSVs of `event_ids` (in that order) into one CSV, atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            for i, event_id in enumerate(event_ids):
                table = pd.read_csv(submission_dir / f"{event_prefix_name(int(event_id))}-submission.csv")
                table.to_csv(f, index=False, header=i == 0)
    return path


def whole_event_summary(metrics: dict[str, Any], efficiency_pt: pd.DataFrame, events: pd.DataFrame,
                        graph: dict[str, Any]) -> dict[str, Any]:
    """The chain's headline numbers (see the module docstring) from evaluate_run's metrics, its
    efficiency_pt table and events table."""
    tracks = metrics["tracks"]
    seconds = sum(v for k, v in metrics.get("timing_s", {}).items() if k != "total")
    n = max(int(metrics["n_events"]), 1)
    out = {"trackml_score": tracks["trackml_score"], "trackml_score_ceiling": tracks["trackml_score_ceiling"]}
    out.update({k: efficiency_above(efficiency_pt, pt) for k, pt in PT_THRESHOLDS.items()})
    out.update({"fake_rate": tracks["fake_rate"], "n_events": int(metrics["n_events"]),
                "hits_per_event": float(events["n_hits"].mean()) if len(events) else 0.0,
                "edges_per_event": float(events["n_edges"].mean()) if len(events) else 0.0,
                "edge_precision": metrics["edge"]["precision"], "edge_recall": metrics["edge"]["recall"],
                "seconds_per_event": seconds / n, "graph": graph,
                "tracks": {"method": tracks["method"], "cut": tracks["cut"]}})
    return out


def reconstruct(workdir: str | os.PathLike, input_dir: str | os.PathLike, out_dir: str | os.PathLike,
                *, config: ml_collections.ConfigDict | None = None,
                tune_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """Runs the whole chain of a trained run on the TrackML events of `input_dir` (simulated or
    public TrackML files, read as they are) and writes `out_dir`: evaluate's report,
    submission.csv and whole_event.json. With `tune_dir` (other events, with truth) the edge cut
    is chosen there first (tune_cut; its report in `out_dir/tuning`). Returns whole_event.json's
    content."""
    config = config or default_chain_config()
    config.write_submissions = True
    out_dir = Path(out_dir)
    tuned = None
    if tune_dir is not None:
        if not Path(tune_dir).is_dir():
            raise InputError(f"tuning events: directory not found: {tune_dir}")
        if Path(tune_dir).resolve() == Path(input_dir).resolve():
            raise InputError(f"tuning events {tune_dir} are the evaluated events: tune the cut on other events")
        tuned = tune_cut(Path(workdir), Path(tune_dir), out_dir / TUNING_DIR, config)
        config.threshold = tuned["cut"]
    metrics = evaluate_run(workdir, input_dir, out_dir, config=config)
    event_ids = metrics["input"]["event_ids"]
    write_joined_submission(out_dir / "submissions", event_ids, out_dir / SUBMISSION_NAME)
    run_graph = _run_graph_config(Path(workdir))
    graph = {"method": run_graph.get("method", "geometric"), "selection": run_graph.get("selection"),
             "filter": (run_graph.get("filter") or {}).get("path", ""),
             "filter_threshold": (run_graph.get("filter") or {}).get("threshold"),
             "overrides": list(config.graph_overrides)}
    summary = whole_event_summary(metrics, pd.read_csv(out_dir / "efficiency_pt.csv"),
                                  pd.read_csv(out_dir / "events.csv"), graph)
    if tuned is not None:
        summary["tracks"]["tuned_on"] = tuned
    summary["files"] = {"submission": SUBMISSION_NAME, "report": "metrics.json"}
    write_json_atomic(out_dir / SUMMARY_NAME, summary)
    return summary


def _run_graph_config(workdir: Path) -> dict[str, Any]:
    """The graph section of the run's config.json as a plain dict (for the summary)."""
    return json.loads((workdir / CONFIG_FILE_NAME).read_text(encoding="utf-8")).get("graph", {})


def format_summary(summary: dict[str, Any]) -> str:
    """A few lines of text for the terminal."""
    def f(x):
        return f"{x:.4f}" if isinstance(x, float) and np.isfinite(x) else "undefined"

    g, cut, tuned = summary["graph"], summary["tracks"]["cut"], summary["tracks"].get("tuned_on")
    return "\n".join([
        f"whole-event chain: {summary['n_events']} events, {summary['hits_per_event']:,.0f} hits and "
        f"{summary['edges_per_event']:,.0f} edges per event ({g['method']} graph"
        f"{', filter ' + str(g['filter']) if g['filter'] else ''}), {summary['seconds_per_event']:.2f} s/event",
        f"  TrackML score {f(summary['trackml_score'])} (ceiling of the graph {f(summary['trackml_score_ceiling'])})",
        f"  track efficiency pT>1 {f(summary['efficiency_pt1'])}, pT>0.5 {f(summary['efficiency_pt0p5'])} "
        f"(double majority); fake rate {f(summary['fake_rate'])}",
        f"  tracks: {summary['tracks']['method']}, edge cut {cut:g}"
        + (f" (tuned on {tuned['n_events']} events in {tuned['events']}: TrackML score "
           f"{tuned['scan'][f'{cut:g}']:.4f} there)" if tuned else ""),
    ])
