"""Physics evaluation of a trained run on TrackML events: edges -> tracks -> metrics + report.

    result = evaluate_run("runs/quickstart", "data/events", out_dir="runs/quickstart/evaluation")

Steps (one direction): read events (hits, truth, particles; cells optional) -> build graphs with
the run's own `config.graph` -> edge scores from the restored model (best checkpoint, else latest)
-> sections merged per event by hit id -> tracks (walkthrough or CC at a cut) -> per event: edge
counts, TrackML score of the full-event submission, matching counts -> pooled metrics with
bootstrap intervals over events -> metrics.json, events.csv, submissions, PNG plots.

Numbers and where they come from:
  edge.*            all real edges of the model's graphs (sections as trained), at `threshold`;
  edge.at_thresholds     accuracy, precision, recall and F1 at each of `edge_thresholds`, with
                    their bootstrap intervals (the AUC does not depend on the cut);
  efficiency_energy.csv  track efficiency vs particle energy |p| = pT cosh(eta) (GeV; the mass is
                    neglected) in `energy_bins`, for particles with >= matching.min_hits graph hits
                    and no pT / eta cut (LUXE positrons fly at |eta| ~ 5 with pT well below 1 GeV);
  tracks.trackml_score   mean over events of the TrackML score of a submission covering every
                    hit of the event (hits outside the graph, e.g. strips of a pixel-only graph,
                    are singletons and cannot score);
  tracks.trackml_score_graph_hits   the same restricted to the graph's hits (what the GNN can reach);
  tracks.efficiency / fake_rate     double-majority matching over the graph's hits, particles with
                    pT >= matching.pt_min, |eta| <= eta_max, >= min_hits hits in the graph;
  tracks.duplicate_rate            under LHC matching (purity >= 75 %): double-majority allows at
                    most one track per particle, so its duplicate rate is 0 by construction.
A metric with an empty denominator (no true edge, no track built, ...) is nan, "undefined", and
named in `warnings` with the reason, as are the events whose graphs have no edge (`empty_events`).
Non-finite edge scores (a diverged checkpoint) stop the evaluation with an InputError.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import ml_collections
import numpy as np
import pandas as pd

from gnntrack.errors import ConfigError, InputError
from gnntrack.graphs.config import event_parts
from gnntrack.report.evaluation import write_evaluation_report
from gnntrack.tracks import bootstrap as bs
from gnntrack.tracks import build as tb
from gnntrack.tracks import matching as tm
from gnntrack.tracks import score as ts

# Score histograms for the bootstrap of the AUC: bins uniform in logit(score), because a good
# classifier piles most edges up within 1e-3 of 0 and 1 where uniform bins would tie them.
N_HIST_BINS = 4000
_HIST_EDGES = 1.0 / (1.0 + np.exp(-np.linspace(-18.0, 18.0, N_HIST_BINS - 1)))


def default_evaluation_config() -> ml_collections.ConfigDict:
    """Evaluation settings (not part of a run's config: they only read a trained model)."""
    c = ml_collections.ConfigDict()
    c.threshold = 0.5             # edge cut for edge metrics and track building
    c.method = "walkthrough"      # 'walkthrough' or 'cc'
    c.attach_min_edges = 1        # walkthrough: re-attach left-over hits with this many edges (0 = off)
    c.track_thresholds = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)  # scanned for the plot
    c.matching = tm.default_matching_config()
    c.headline_matching = "double_majority"   # efficiency / fake rate
    c.duplicate_matching = "lhc"              # duplicate rate (see module docstring)
    c.edge_thresholds = ()        # further edge cuts with metrics and intervals (e.g. (0.3, 0.5, 0.7))
    c.energy_bins = ()            # GeV bin edges of a track efficiency vs energy table (() = none)
    c.n_boot = 1000
    c.level = 0.95                # central probability of the bootstrap intervals (0.68 = 1 sigma)
    c.seed = 0
    c.checkpoint = "best"         # 'best' (falls back to latest), 'latest' or a step number ('200')
    c.limit = 0                   # events to evaluate (0 = all)
    c.event_ids = ()              # only these event ids (() = every event of the directory)
    c.chunk_events = 8            # events read, scored and turned into tracks at a time (memory)
    c.graph_overrides = ()        # 'key=value' changes to the run's graph config (e.g. 'pt_min=0')
    c.display_max_tracks = 300    # event display: colour this many random tracks when busier
    c.plots = True
    c.write_submissions = True
    c.progress = True
    return c


# ---------------------------------------------------------------------------------------------
# The trained model
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass
class RunModel:
    """A run's resolved config and its restored model."""

    workdir: Path
    config: ml_collections.ConfigDict
    model: Any
    params: Any
    step: int
    which: str  # 'best' or 'latest' or 'step'


def load_run(workdir: str | os.PathLike, checkpoint: str | int = "best") -> RunModel:
    """Reads `<workdir>/config.json` and restores the model parameters from its checkpoints.

    Only reads: a run that is training meanwhile (its lock, its save in progress) is left alone.
    A damaged checkpoint chosen by 'best' or 'latest' is skipped for the newest one that restores,
    with one line on stderr; one asked for by its step number is an error.

    Args:
      checkpoint: 'best' (the best by the run's train.best_metric; the latest if none is
        marked), 'latest', or a step number.
    Raises InputError when the run directory, its config or its checkpoints are missing,
    CheckpointError when the chosen (or every) checkpoint is damaged, ConfigError when
    config.json no longer fits the checkpoint (an edited model).
    """
    from gnntrack.config import CONFIG_FILE_NAME, load_config
    from gnntrack.nn.models import build_model
    from gnntrack.train.checkpoint import CHECKPOINT_DIR_NAME, restore_run_checkpoint, shape_mismatch

    workdir = Path(workdir)
    if not (workdir / CONFIG_FILE_NAME).exists():
        raise InputError(f"{workdir}: not a run directory ({CONFIG_FILE_NAME} not found)")
    config = load_config(workdir / CONFIG_FILE_NAME)
    task = config.get("task", ml_collections.ConfigDict()).get("name", "edge")
    if task != "edge":
        raise InputError(f"{workdir}: a run of the {task!r} task; gnntrack evaluate builds tracks from "
                         f"edge scores (task 'edge'). Its test predictions are in {workdir / 'test_predictions.npz'}")
    state, step, which = restore_run_checkpoint(workdir / CHECKPOINT_DIR_NAME, config, checkpoint)
    params = state["params"] if isinstance(state, dict) else state.params
    model = build_model(config.model)
    detail = shape_mismatch(params, expected_params(model, config))
    if detail is not None:
        raise ConfigError(f"{workdir / CONFIG_FILE_NAME} does not fit checkpoint {step} in {workdir / CHECKPOINT_DIR_NAME}: {detail}. "
                          "Was config.json edited? Undo the edit to evaluate this run")
    return RunModel(workdir=workdir, config=config, model=model, params=params, step=int(step), which=which)


def expected_params(model, config: ml_collections.ConfigDict) -> Any:
    """Shapes (ShapeDtypeStructs) of the parameters `model` gets from the run's config: an
    abstract init on a tiny graph with the config's node and edge feature counts (nothing is
    computed)."""
    import jax

    from gnntrack.graphs.batching import synthetic_hit_graph

    features = config.graph.features
    graph = synthetic_hit_graph(np.random.default_rng(0), 4, 6, n_node_features=len(features.node),
                                n_edge_features=len(features.edge)).graph
    return jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), graph, train=False))["params"]


def make_score_fn(model, params) -> Callable:
    """`score_fn(batch) -> (probabilities [1, E_pad], loss_sum [1])` for `predict_edge_scores`:
    the engine's eval step (`gnntrack.train.step.make_eval_step`, the one `gnntrack train`
    validates with) on one device."""
    import jax

    from gnntrack.train.losses import default_loss_config
    from gnntrack.train.parallel import DataParallel, default_parallel_config
    from gnntrack.train.state import TrainState
    from gnntrack.train.step import make_eval_step

    parallel = default_parallel_config()
    parallel.n_devices = 1
    dp = DataParallel(parallel)
    p_eval = dp.eval_step(make_eval_step(model, default_loss_config()))
    state = dp.put_state(TrainState(step=np.int32(0), params=params, opt_state=(), rng=jax.random.PRNGKey(0)))

    def score_fn(batch):
        out = p_eval(state, batch)
        return np.asarray(out["scores"]), np.asarray(out["loss_sum"])

    return score_fn


# ---------------------------------------------------------------------------------------------
# One event
# ---------------------------------------------------------------------------------------------

def edge_counts(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, Any]:
    """Confusion counts and score histograms of one event's edges (summable over events)."""
    scores = np.asarray(scores, np.float64)
    labels = np.asarray(labels).astype(bool)
    pred = scores >= threshold
    tp, fp = int(np.sum(pred & labels)), int(np.sum(pred & ~labels))
    fn, tn = int(np.sum(~pred & labels)), int(np.sum(~pred & ~labels))
    bins = np.searchsorted(_HIST_EDGES, scores, side="right")  # 0..N_HIST_BINS-1, ascending in score
    return {"n_edges": scores.size, "n_true_edges": int(labels.sum()), "tp": tp, "fp": fp, "fn": fn, "tn": tn,
            "edge_correct": tp + tn, "edge_predicted": tp + fp, "f1_num": 2 * tp, "f1_den": 2 * tp + fp + fn,
            "hist_true": np.bincount(bins[labels], minlength=N_HIST_BINS),
            "hist_fake": np.bincount(bins[~labels], minlength=N_HIST_BINS)}


def graph_hit_score(truth: pd.DataFrame, hit_id: np.ndarray, track_id: np.ndarray) -> float:
    """TrackML score with truth restricted to the given hits (weights renormalised over them)."""
    sub_truth = truth[truth["hit_id"].isin(hit_id)]
    return ts.trackml_score(sub_truth, pd.DataFrame({"hit_id": hit_id, "track_id": track_id}), validate=False)


def graph_score_ceiling(truth: pd.DataFrame, hits: np.ndarray, graph_hit_id: np.ndarray,
                        graph_particle_id: np.ndarray) -> float:
    """Full-event TrackML score of PERFECT tracks on the graph's hits (one track per particle,
    every other hit a singleton): the most any track building on these graphs can score. With
    truth-cut training graphs (pT, noise, duplicates removed) it is far below 1.

    Args:
      truth: the event's truth table; hits: every hit id of the event [H];
      graph_hit_id, graph_particle_id: hit and particle ids of the graph nodes [N] (0 = noise).
    """
    track_id = np.arange(1, hits.size + 1, dtype=np.int64) + int(np.max(graph_particle_id, initial=0))
    position = pd.Index(hits).get_indexer(graph_hit_id)
    real = np.asarray(graph_particle_id) > 0
    track_id[position[real]] = np.asarray(graph_particle_id)[real]
    return ts.trackml_score(truth, pd.DataFrame({"hit_id": hits, "track_id": track_id}), validate=False)


@dataclasses.dataclass
class EventResult:
    row: dict[str, Any]               # per-event numbers (events.csv + bootstrap table)
    particles: pd.DataFrame           # MatchResult.particles with event_id
    submission: pd.DataFrame
    scan: list[dict[str, float]]      # per track threshold: counts for the threshold plot
    display: dict[str, np.ndarray] | None = None


def evaluate_event(event, graphs: Sequence, scores: Sequence[np.ndarray],
                   config: ml_collections.ConfigDict, *, keep_display: bool = False) -> EventResult:
    """Tracks and metrics of one event from its scored graphs (see module docstring)."""
    edges = tb.merge_section_graphs(graphs, scores)
    labels = tb.build_tracks(edges.n_nodes, edges.senders, edges.receivers, edges.scores,
                             method=config.method, cut=config.threshold, attach_min_edges=config.attach_min_edges)
    hits = event.hits["hit_id"].to_numpy(np.int64)
    track_id = tb.event_track_ids(hits, edges.hit_id, labels)
    submission = ts.make_submission(event.event_id, hits, track_id)
    row: dict[str, Any] = {"event_id": int(event.event_id), "n_hits": int(hits.size),
                           "n_nodes": edges.n_nodes, "n_graphs": len(graphs)}
    all_scores = np.concatenate([np.asarray(s) for s in scores]) if scores else np.zeros(0)
    all_labels = np.concatenate([np.asarray(g.y) for g in graphs]) if graphs else np.zeros(0)
    row.update(edge_counts(all_scores, all_labels, config.threshold))
    for t in config.edge_thresholds:
        counts = edge_counts(all_scores, all_labels, float(t))
        row.update({f"{k}@{float(t):g}": counts[k] for k in CUT_COUNTS})
    row["trackml_score"] = ts.trackml_score(event.truth, submission, validate=False)
    row["trackml_score_ceiling"] = graph_score_ceiling(event.truth, hits, edges.hit_id, edges.particle_id)
    node_tracks = labels  # on graph nodes the submission's partition is exactly the labels
    row["trackml_score_graph_hits"] = graph_hit_score(event.truth, edges.hit_id, node_tracks)
    match = tm.match_tracks(edges.particle_id, node_tracks, event.particles, config.matching)
    for scheme, counts in match.counts.items():
        for key, value in counts.items():
            row[f"{scheme}.{key}"] = value
        for key, value in tm.rates_from_counts(counts).items():
            row[f"{scheme}.{key}"] = value
    particles = match.particles.assign(event_id=int(event.event_id))

    scan = []
    for t in config.track_thresholds:
        lab = tb.build_tracks(edges.n_nodes, edges.senders, edges.receivers, edges.scores,
                              method=config.method, cut=float(t), attach_min_edges=config.attach_min_edges)
        m = tm.match_tracks(edges.particle_id, lab, event.particles, config.matching)
        c = m.counts[config.headline_matching]
        scan.append({"threshold": float(t), **c,
                     "trackml_score_graph_hits": graph_hit_score(event.truth, edges.hit_id, lab)})
    display = None
    if keep_display:
        pos = event.hits.set_index("hit_id").loc[edges.hit_id, ["x", "y", "z"]].to_numpy(np.float64)
        display = {"x": pos[:, 0], "y": pos[:, 1], "z": pos[:, 2], "track_id": labels}
    return EventResult(row=row, particles=particles, submission=submission, scan=scan, display=display)


# ---------------------------------------------------------------------------------------------
# Aggregation
# ---------------------------------------------------------------------------------------------

def scheme_specs(scheme: str) -> dict[str, tuple]:
    """Bootstrap specs of efficiency, fake rate and duplicate rate from one scheme's count columns."""
    return {"efficiency": ("ratio", f"{scheme}.n_matched_particles", f"{scheme}.n_particles"),
            "fake_rate": ("ratio_diff", f"{scheme}.n_tracks", f"{scheme}.n_matched_tracks", f"{scheme}.n_tracks"),
            "duplicate_rate": ("ratio_diff", f"{scheme}.n_matched_tracks_rec", f"{scheme}.n_matched_particles",
                               f"{scheme}.n_matched_tracks_rec")}


# the per-event columns of `edge_counts` that depend on the cut
CUT_COUNTS = ("edge_correct", "tp", "edge_predicted", "f1_num", "f1_den")


def threshold_specs(edge_specs: dict[str, tuple], threshold: float) -> dict[str, tuple]:
    """The cut-dependent edge specs with their count columns at `threshold` (`<column>@<t>`)."""
    at = lambda c: f"{c}@{threshold:g}" if c in CUT_COUNTS else c  # noqa: E731
    return {name: (spec[0], *map(at, spec[1:])) for name, spec in edge_specs.items() if spec[0] != "auc_hist"}


def bootstrap_specs(config: ml_collections.ConfigDict) -> tuple[dict[str, tuple], dict[str, tuple]]:
    """(edge specs, track specs) for `bootstrap_metrics` over the per-event table."""
    edge = {"accuracy": ("ratio", "edge_correct", "n_edges"),
            "precision": ("ratio", "tp", "edge_predicted"),
            "recall": ("ratio", "tp", "n_true_edges"),
            "f1": ("ratio", "f1_num", "f1_den"),
            "auc": ("auc_hist", "hist_true", "hist_fake")}
    head, dup = scheme_specs(config.headline_matching), scheme_specs(config.duplicate_matching)
    tracks = {"trackml_score": ("mean", "trackml_score"),
              "trackml_score_graph_hits": ("mean", "trackml_score_graph_hits"),
              "trackml_score_ceiling": ("mean", "trackml_score_ceiling"),
              "efficiency": head["efficiency"], "fake_rate": head["fake_rate"],
              "duplicate_rate": dup["duplicate_rate"]}
    return edge, tracks


def _with_intervals(boot: dict[str, dict[str, float]], exact: dict[str, float] | None = None) -> dict:
    """{name: value, ..., "intervals": {name: [lo, hi]}} (intervals only with several events).

    `exact` values replace the bootstrap's point estimates, except where those are nan: an empty
    denominator (e.g. precision when no edge passes the cut) leaves the metric undefined, which
    `edge_metrics`' 0.0 convention would hide.
    """
    out: dict[str, Any] = {}
    intervals = {}
    for name, b in boot.items():
        defined = math.isfinite(b["value"])
        out[name] = float(exact[name]) if exact and name in exact and defined else b["value"]
        if math.isfinite(b["ci_low"]):
            intervals[name] = [b["ci_low"], b["ci_high"]]
    if intervals:
        out["intervals"] = intervals
    return out


def summarize(rows: list[dict[str, Any]], all_scores: np.ndarray, all_labels: np.ndarray,
              config: ml_collections.ConfigDict) -> dict[str, Any]:
    """metrics.json's `edge` and `tracks` groups from the per-event rows."""
    from gnntrack.train.metrics import edge_metrics

    table = pd.DataFrame(rows)
    edge_specs, track_specs = bootstrap_specs(config)
    kw = dict(n_boot=int(config.n_boot), level=float(config.level), seed=int(config.seed))
    exact = edge_metrics(all_scores, all_labels, config.threshold)
    edge = _with_intervals(bs.bootstrap_metrics(table, edge_specs, **kw), exact)
    edge.update(n_edges=int(exact["n_edges"]), n_true=int(exact["n_true"]), threshold=float(config.threshold))
    if tuple(config.edge_thresholds):
        edge["at_thresholds"] = {
            f"{float(t):g}": _with_intervals(bs.bootstrap_metrics(table, threshold_specs(edge_specs, float(t)), **kw),
                                             edge_metrics(all_scores, all_labels, float(t)))
            for t in config.edge_thresholds}
    tracks = _with_intervals(bs.bootstrap_metrics(table, track_specs, **kw))
    by_matching = {}
    for scheme in tm.SCHEMES:
        by_matching[scheme] = _with_intervals(bs.bootstrap_metrics(table, scheme_specs(scheme), **kw))
        by_matching[scheme].update({k: int(table[f"{scheme}.{k}"].sum()) for k in tm.COUNT_KEYS})
    tracks["by_matching"] = by_matching
    tracks["matching"] = {"efficiency": config.headline_matching, "fake_rate": config.headline_matching,
                          "duplicate_rate": config.duplicate_matching}
    tracks["reconstructable"] = {"pt_min_gev": float(config.matching.pt_min), "eta_max": float(config.matching.eta_max),
                                 "min_hits": int(config.matching.min_hits),
                                 "min_track_hits": int(config.matching.min_track_hits)}
    tracks["method"] = config.method
    if config.method == "walkthrough":
        tracks["attach_min_edges"] = int(config.attach_min_edges)
    tracks["cut"] = float(config.threshold)
    return {"edge": edge, "tracks": tracks, "n_events": len(rows),
            "bootstrap": {"n_boot": int(config.n_boot), "level": float(config.level), "unit": "event"}}


def metric_warnings(metrics: dict[str, Any], rows: list[dict[str, Any]],
                    config: ml_collections.ConfigDict) -> list[str]:
    """One line per headline metric that is undefined (nan) and why, then one naming the events
    whose graphs have no edge (they stay in the metrics as events without tracks: leaving them
    out would flatter the TrackML score and the efficiency). For metrics.json's `warnings`."""
    edge_specs, track_specs = bootstrap_specs(config)
    out = []
    for group, specs in (("edge", edge_specs), ("tracks", track_specs)):
        for name, spec in specs.items():
            if math.isfinite(metrics[group][name]):
                continue
            if spec[0] == "auc_hist":
                why = (f"it needs both true and fake edges; the events hold "
                       f"{sum(int(r['n_true_edges']) for r in rows)} true of {sum(int(r['n_edges']) for r in rows)} "
                       "edges")
            elif spec[0] == "mean":
                why = "no event was evaluated"
            else:
                why = f"its denominator '{spec[-1]}' (events.csv) sums to 0 over the {len(rows)} events"
            out.append(f"{group} {name} is undefined: {why}")
    empty = empty_event_ids(rows)
    if empty:
        shown = ", ".join(f"event {i}" for i in empty[:10]) + (", ..." if len(empty) > 10 else "")
        out.append(f"{len(empty)} of {len(rows)} events have no graph edge ({shown}): they stay in the metrics, "
                   "with no track built in them; check the run's graph selection and cuts against them")
    return out


def empty_event_ids(rows: list[dict[str, Any]]) -> list[int]:
    """Ids of the events whose graphs hold no edge."""
    return [int(r["event_id"]) for r in rows if int(r["n_edges"]) == 0]


def check_finite_scores(scores: Sequence[np.ndarray], event_ids: Sequence[int], run: RunModel) -> None:
    """InputError unless every edge score is finite: a NaN score has no place in a ranking, so
    every metric would be meaningless (the AUC of NaNs is not 0.5)."""
    n_bad = sum(int(np.count_nonzero(~np.isfinite(s))) for s in scores)
    if n_bad:
        n_edges = sum(int(np.size(s)) for s in scores)
        first, last = min(event_ids), max(event_ids)
        events = f"event {first}" if first == last else f"events {first}..{last}"
        raise InputError(
            f"{run.workdir}: checkpoint step {run.step} ({run.which}) gives non-finite edge scores on {n_bad} "
            f"of {n_edges} edges of {events}: its parameters or activations "
            "overflow (a diverging run?). Evaluate an earlier checkpoint with --checkpoint STEP, or retrain "
            "with a lower optimizer.lr or an optimizer.clip_grad_norm")


def threshold_scan_table(scans: list[list[dict[str, float]]]) -> pd.DataFrame:
    """Pooled track metrics per scanned threshold (events summed; TrackML score averaged)."""
    flat = pd.DataFrame([r for event in scans for r in event])
    if flat.empty:
        return flat
    g = flat.groupby("threshold", sort=True)
    out = g[list(tm.COUNT_KEYS)].sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        out["track_efficiency"] = out["n_matched_particles"] / out["n_particles"].replace(0, np.nan)
        out["track_purity"] = out["n_matched_tracks"] / out["n_tracks"].replace(0, np.nan)
    out["trackml_score_graph_hits"] = g["trackml_score_graph_hits"].mean()
    return out.reset_index()


def edge_threshold_scan(scores: np.ndarray, labels: np.ndarray, thresholds: np.ndarray) -> pd.DataFrame:
    """Edge purity (precision) and efficiency (recall) at each threshold, by sorting once."""
    scores = np.asarray(scores, np.float64)
    labels = np.asarray(labels).astype(bool)
    true_sorted = np.sort(scores[labels])
    fake_sorted = np.sort(scores[~labels])
    tp = true_sorted.size - np.searchsorted(true_sorted, thresholds, side="left")
    fp = fake_sorted.size - np.searchsorted(fake_sorted, thresholds, side="left")
    with np.errstate(divide="ignore", invalid="ignore"):
        purity = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), np.nan)
        efficiency = tp / max(true_sorted.size, 1)
    return pd.DataFrame({"threshold": thresholds, "edge_purity": purity, "edge_efficiency": efficiency})


# ---------------------------------------------------------------------------------------------
# The whole run
# ---------------------------------------------------------------------------------------------

def _graph_inputs(config: ml_collections.ConfigDict, workdir: Path, overrides: Sequence[str] = ()):
    """Prepared graph config, layer table and layer pairs of the run (once for all events).

    `overrides` ('key=value', keys of the graph config) change the run's graph config, e.g.
    'pt_min=0' to evaluate a model trained on truth-cut graphs on complete events.
    """
    from gnntrack.config import apply_overrides
    from gnntrack.graphs.build import prepare

    graph_config = ml_collections.ConfigDict(config.graph.to_dict())
    graph_config.lock()
    apply_overrides(graph_config, overrides)
    lp = graph_config.get("layer_pairs", "geometric")
    if lp != "geometric" and not Path(lp).is_absolute() and (workdir / lp).exists():
        graph_config.layer_pairs = str(workdir / lp)  # learned layer maps may be stored in the run
    for group, key in (("metric", "embedding"), ("filter", "path")):  # so may the learned graph stages
        name = str(graph_config.get(group, {}).get(key, "") or "")
        if name and not Path(name).is_absolute() and (workdir / name).exists():
            graph_config[group][key] = str(workdir / name)
    return prepare(graph_config)


def evaluate_run(workdir: str | os.PathLike, input_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None,
                 *, config: ml_collections.ConfigDict | None = None) -> dict[str, Any]:
    """Evaluates a trained run on the TrackML events of `input_dir` and writes the report.

    Args:
      workdir: run directory (config.json, checkpoints/, metrics.jsonl).
      input_dir: directory of TrackML events (hits, truth, particles; cells optional).
      out_dir: report directory (default `<workdir>/evaluation`).
      config: `default_evaluation_config()` or a variant.

    Returns:
      the metrics dict written to `<out_dir>/metrics.json`.
    """
    from gnntrack.graphs.batching import make_ladder
    from gnntrack.graphs.build import build_event
    from gnntrack.io.trackml import event_id_from_prefix, list_event_prefixes, read_event
    from gnntrack.train.evaluation import eval_batching_config, predict_edge_scores

    config = config or default_evaluation_config()
    if config.method not in tb.METHODS:
        raise ConfigError(f"evaluation method must be one of {', '.join(tb.METHODS)}, got {config.method!r}")
    workdir = Path(workdir)
    out_dir = Path(out_dir) if out_dir is not None else workdir / "evaluation"
    t0 = time.perf_counter()
    if not Path(input_dir).is_dir():
        raise InputError(f"input directory not found: {input_dir}")
    run = load_run(workdir, config.checkpoint)
    prefixes = list_event_prefixes(input_dir)
    if not prefixes:
        raise InputError(f"{input_dir}: no TrackML event files (event<digits>-hits.csv[.gz])")
    if tuple(config.event_ids):
        wanted = {int(i) for i in config.event_ids}
        prefixes = [p for p in prefixes if event_id_from_prefix(p) in wanted]
        if len(prefixes) != len(wanted):
            raise InputError(f"{input_dir}: events {sorted(wanted - {event_id_from_prefix(p) for p in prefixes})} "
                             f"not found")
    if config.limit:
        prefixes = prefixes[: int(config.limit)]
    graph_config, layers, layer_pairs = _graph_inputs(run.config, workdir, tuple(config.graph_overrides))

    parts = event_parts(graph_config)
    from tqdm import tqdm

    score_fn = make_score_fn(run.model, run.params)
    batching = _batching_config(run.config)
    timing = {"graphs": 0.0, "scores": 0.0, "tracks": 0.0}
    results: list[EventResult] = []
    score_parts, label_parts = [], []
    ladder = None
    bar = tqdm(total=len(prefixes), desc="evaluating events", unit="event", disable=not config.progress)
    chunk = max(int(config.chunk_events), 1)
    # events go through in chunks: memory stays bounded on large real data sets, and one bucket
    # ladder (extended when a larger graph comes) serves every chunk, so shapes compile once
    for first in range(0, len(prefixes), chunk):
        t = time.perf_counter()
        events, graphs_per_event = [], []
        for prefix in prefixes[first:first + chunk]:
            event = read_event(prefix, parts, required=("hits", "truth"))
            events.append(event)
            graphs_per_event.append(build_event(event, graph_config, layers, layer_pairs)[0])
        flat_graphs = [g for gs in graphs_per_event for g in gs]
        timing["graphs"] += time.perf_counter() - t
        t = time.perf_counter()
        if ladder is None:
            ladder = make_ladder(flat_graphs, eval_batching_config(batching, len(flat_graphs)), 1)
        flat_scores, _ = predict_edge_scores(score_fn, flat_graphs, batching, 1, ladder=ladder)
        check_finite_scores(flat_scores, [e.event_id for e in events], run)
        timing["scores"] += time.perf_counter() - t
        t = time.perf_counter()
        k = 0
        for event, graphs in zip(events, graphs_per_event):
            scores = flat_scores[k:k + len(graphs)]
            k += len(graphs)
            results.append(evaluate_event(event, graphs, scores, config, keep_display=not results))
            score_parts.extend(np.asarray(s, np.float32) for s in scores)
            label_parts.extend(np.asarray(g.y) > 0.5 for g in graphs)
            bar.update(1)
        timing["tracks"] += time.perf_counter() - t
    bar.close()

    all_scores = np.concatenate(score_parts) if score_parts else np.zeros(0, np.float32)
    all_labels = np.concatenate(label_parts) if label_parts else np.zeros(0, bool)
    rows = [r.row for r in results]
    metrics = summarize(rows, all_scores, all_labels, config)
    graph_cfg = graph_config
    truth_cuts = {k: graph_cfg.get(k) for k in ("pt_min", "remove_noise", "remove_duplicates") if graph_cfg.get(k)}
    metrics["run"] = {"workdir": str(workdir), "checkpoint": run.which, "step": run.step,
                      "model": run.config.model.get("name", "?"), "graph_selection": graph_cfg.get("selection"),
                      "graph_truth_cuts": truth_cuts, "graph_overrides": list(config.graph_overrides)}
    if truth_cuts:
        metrics["run"]["warning"] = ("the run's graph config cuts on truth (" + ", ".join(truth_cuts) +
                                     "): evaluation graphs use the same cuts, so metrics are optimistic")
    metrics["input"] = {"dir": str(input_dir), "event_ids": [r["event_id"] for r in rows]}
    metrics["empty_events"] = empty_event_ids(rows)
    metrics["n_empty_events"] = len(metrics["empty_events"])
    metrics["warnings"] = metric_warnings(metrics, rows, config)
    metrics["timing_s"] = dict(timing)
    write_evaluation_report(out_dir, metrics, evaluation_tables(results, all_scores, all_labels, config),
                            results, all_scores, all_labels, config, workdir)
    metrics["timing_s"]["total"] = time.perf_counter() - t0
    from gnntrack.io.atomic import write_json_atomic

    write_json_atomic(out_dir / "metrics.json", metrics)
    return metrics


def _batching_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The run's batching config on top of today's defaults (runs saved before a key existed work)."""
    from gnntrack.graphs.batching import default_batching_config

    merged = default_batching_config()
    for key, value in config.get("batching", ml_collections.ConfigDict()).items():
        if key in merged:
            merged[key] = value
    return merged


# ---------------------------------------------------------------------------------------------
# Tables for the report
# ---------------------------------------------------------------------------------------------

def per_event_table(results: Sequence[EventResult]) -> pd.DataFrame:
    """events.csv: one row per event, histogram columns dropped."""
    table = pd.DataFrame([r.row for r in results])
    return table.drop(columns=[c for c in ("hist_true", "hist_fake") if c in table.columns])


def evaluation_tables(results: Sequence[EventResult], all_scores: np.ndarray, all_labels: np.ndarray,
                      config: ml_collections.ConfigDict) -> dict[str, Any]:
    """What the report shows, computed: 'events' (per event), 'efficiency' {variable: {matching
    scheme: binned table}}, 'edge_scan' and 'track_scan' (metrics vs threshold)."""
    particles = pd.concat([r.particles for r in results], ignore_index=True) if results else pd.DataFrame()
    efficiency = {variable: {s: tm.binned_efficiency(particles, variable, bins, s, config.matching)
                             for s in tm.SCHEMES}
                  for variable, bins in (("pt", config.matching.pt_bins), ("eta", config.matching.eta_bins))}
    if tuple(config.energy_bins) and len(particles):
        # binned_efficiency bins 'pt' over |eta| <= eta_max: hand it the energy as 'pt' and no eta
        energy = particles.assign(pt=particles["pt"] * np.cosh(particles["eta"]), eta=0.0)
        efficiency["energy"] = {s: tm.binned_efficiency(energy, "pt", config.energy_bins, s, config.matching)
                                for s in tm.SCHEMES}
    return {"events": per_event_table(results), "efficiency": efficiency,
            "edge_scan": edge_threshold_scan(all_scores, all_labels, np.linspace(0.0, 1.0, 101)),
            "track_scan": threshold_scan_table([r.scan for r in results])}
