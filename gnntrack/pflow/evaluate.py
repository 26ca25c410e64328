"""Particle-flow evaluation: reconstructed particles, per-class rates, jets and missing E_T, with
bootstrap intervals over events, for the ML model and the rule-based baseline side by side.

Every reconstruction is a per-element table in the TARGET_COLUMNS layout (class, charge, pt, eta,
sin φ, cos φ, E): the targets (the generator-level particles, as the model is trained to give
them), the baseline's rows (stored with the events) and the model's (`prediction_rows`). An
element of class 'none' gives no particle.

  * per class c, per element: efficiency = #(true c, predicted c) / #(true c) and
    fake rate = #(predicted c, true not c) / #(predicted c);
  * jets: anti-kT (R = jet_radius) of each particle list (`gnntrack.pflow.jets`); gen jets
    (of the targets) with pT > jet_pt_min and |eta| < jet_eta_max, each matched to the nearest
    reco jet within delta R < match_dr; response = median of pT_reco / pT_gen, resolution =
    IQR / median of it, over matched jets; matching efficiency = matched / gen jets;
  * missing E_T = |-(vector sum of the particles' pT)| per event: response and resolution as
    for jets over events with gen MET > met_min_gev, and sigma = IQR / 1.349 of the x and y
    components of MET_reco - MET_gen (GeV; no cut: small METs make the ratio wide);
  * the difference ML - baseline of each jet and MET number on the same resamples (paired), and
    ML - a compared run's (`compare`: e.g. the quadratic reference of an LSH model, on the same
    events and resamples).

Intervals are percentile bootstrap intervals over events (`gnntrack.tracks.bootstrap`): rates
are pooled counts; a quantile metric weights each jet (event) by its event's multiplicity in the
resample. The computations are pure; `evaluate_pflow_run` reads a trained run and events, scores
them with the engine's prediction path and hands the numbers to `gnntrack.report.pflow`, which
writes.
"""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import ml_collections
import numpy as np
import pandas as pd

from gnntrack.errors import ConfigError, InputError
from gnntrack.pflow.jets import cluster_jets, match_jets
from gnntrack.pflow.source import event_graph
from gnntrack.pflow.store import PflowEvent, read_events
from gnntrack.pflow.types import DIFFERENCE_KEYS, PARTICLE_CLASSES, TARGET_COLUMNS
from gnntrack.tracks.bootstrap import bootstrap_metrics, resample_weights
from gnntrack.train.data import split_event_ids

IQR_TO_SIGMA = 1.349  # IQR of a Gaussian in units of sigma
MAX_BLOCK = 10_000_000  # resamples x values held at once by the weighted quantiles


def default_pflow_evaluation_config() -> ml_collections.ConfigDict:
    """Jet and MET definitions (GeV, eta-phi units), bootstrap settings and run options."""
    return ml_collections.ConfigDict(dict(
        checkpoint="best", limit=0, jet_radius=0.4, jet_pt_min=20.0, jet_eta_max=2.5, match_dr=0.1,
        met_min_gev=10.0, n_boot=1000, level=0.95, seed=0, plots=True,
        # 'key=value' changes to the run's model config that keep its parameters (e.g. 'dense=true':
        # an LSH-trained MLPF with one bin); another pflow run evaluated beside it, and its changes
        model_overrides=(), compare="", compare_model_overrides=()))


@dataclasses.dataclass
class Particles:
    """The particles of many events, flat: pt (GeV), eta, phi float64 [P], cls int64 [P] (index
    into PARTICLE_CLASSES, never 0), charge float64 [P]; counts int64 [n_events]."""

    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    cls: np.ndarray
    charge: np.ndarray
    counts: np.ndarray


def prediction_rows(scores: np.ndarray, charge: np.ndarray, values: np.ndarray) -> np.ndarray:
    """float32 [N, len(TARGET_COLUMNS)] from the pflow task's predictions of one event: class
    probabilities [N, 6] and charge probabilities [N, 3] (of -1, 0, +1) by their argmax, values
    [N, 5] (pt, eta, sin φ, cos φ, E) as they are."""
    rows = np.zeros((len(scores), len(TARGET_COLUMNS)), np.float32)
    rows[:, 0] = np.argmax(scores, -1)
    rows[:, 1] = np.argmax(charge, -1) - 1
    rows[:, 2:] = values
    return rows


def particles_from_rows(rows: Sequence[np.ndarray]) -> Particles:
    """The particles of events given as per-element rows [N_i, len(TARGET_COLUMNS)]: one per
    element whose class is not 'none', phi from (sin φ, cos φ)."""
    flat = np.concatenate(rows) if rows else np.zeros((0, len(TARGET_COLUMNS)), np.float32)
    flat = flat.astype(np.float64)
    keep = flat[:, 0].astype(np.int64) > 0
    counts = np.array([int(np.sum(np.asarray(r)[:, 0].astype(np.int64) > 0)) for r in rows], np.int64)
    p = flat[keep]
    return Particles(pt=p[:, 2], eta=p[:, 3], phi=np.arctan2(p[:, 4], p[:, 5]), cls=p[:, 0].astype(np.int64),
                     charge=p[:, 1], counts=counts)


def missing_et(particles: Particles) -> np.ndarray:
    """float64 [n_events, 2]: MET vector -(sum px, sum py) of each event (GeV)."""
    event = np.repeat(np.arange(len(particles.counts)), particles.counts)
    n = len(particles.counts)
    return -np.stack([np.bincount(event, particles.pt * np.cos(particles.phi), minlength=n),
                      np.bincount(event, particles.pt * np.sin(particles.phi), minlength=n)], axis=1)


def class_counts(true_rows: Sequence[np.ndarray], reco_rows: Sequence[np.ndarray]) -> pd.DataFrame:
    """Per event and class name: n_true_<c>, n_pred_<c>, n_match_<c> (true c and predicted c)."""
    table: dict[str, list[int]] = {}
    for y, r in zip(true_rows, reco_rows):
        t, p = np.asarray(y)[:, 0].astype(np.int64), np.asarray(r)[:, 0].astype(np.int64)
        for c, name in enumerate(PARTICLE_CLASSES[1:], start=1):
            for key, n in ((f"n_true_{name}", t == c), (f"n_pred_{name}", p == c), (f"n_match_{name}", (t == c) & (p == c))):
                table.setdefault(key, []).append(int(np.sum(n)))
    return pd.DataFrame(table)


def weighted_quantiles(values: np.ndarray, group: np.ndarray, weights: np.ndarray,
                       qs: Sequence[float]) -> np.ndarray:
    """float64 [B, len(qs)]: inverted-CDF quantiles (numpy's method='inverted_cdf') of `values`
    [V], each counted weights[b, group[v]] times in resample b (weights [B, n_groups]); nan
    where a resample holds no value."""
    values = np.asarray(values, np.float64)
    out = np.full((len(weights), len(qs)), np.nan)
    if not len(values):
        return out
    order = np.argsort(values, kind="stable")
    sorted_values, sorted_group = values[order], np.asarray(group)[order]
    block = max(1, MAX_BLOCK // len(values))
    for start in range(0, len(weights), block):
        cum = np.cumsum(weights[start:start + block][:, sorted_group], axis=1)
        total = cum[:, -1]
        for j, q in enumerate(qs):
            first = np.minimum(np.sum(cum < q * total[:, None], axis=1), len(values) - 1)
            out[start:start + block, j] = np.where(total > 0, sorted_values[first], np.nan)
    return out


def response_resolution(ratio: np.ndarray, group: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(median [B], IQR / median [B]) of `ratio` per resample (see `weighted_quantiles`)."""
    q25, median, q75 = weighted_quantiles(ratio, group, weights, (0.25, 0.5, 0.75)).T
    with np.errstate(divide="ignore", invalid="ignore"):
        return median, np.where(median != 0, (q75 - q25) / median, np.nan)


def sigma_iqr(values: np.ndarray, group: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """IQR / 1.349 of `values` per resample [B]: a Gaussian's sigma, robust to tails."""
    q25, q75 = weighted_quantiles(values, group, weights, (0.25, 0.75)).T
    return (q75 - q25) / IQR_TO_SIGMA


def interval(values: np.ndarray, level: float) -> dict[str, float]:
    """{value, ci_low, ci_high} from [1 + B] values: the point estimate, then the resamples'
    percentile interval (nan without finite resamples)."""
    boots = values[1:][np.isfinite(values[1:])]
    lo, hi = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2]) if boots.size else (np.nan, np.nan)
    return {"value": float(values[0]), "ci_low": float(lo), "ci_high": float(hi)}


@dataclasses.dataclass
class Reconstruction:
    """What one particle list gives, per resample (row 0: all events once, then the B
    resamples): jets and MET numbers [1 + B] by name, and the arrays plotted."""

    per_resample: dict[str, np.ndarray]
    jet_ratio: np.ndarray  # float64 [matched jets] pT_reco / pT_gen
    met_ratio: np.ndarray  # float64 [events with gen MET > met_min] MET_reco / MET_gen
    met: np.ndarray        # float64 [n_events] MET_reco (GeV)
    n_gen_jets: int
    n_matched_jets: int


def reconstruction_numbers(truth: Particles, reco: Particles, weights: np.ndarray,
                           config: ml_collections.ConfigDict) -> Reconstruction:
    """Jet and MET numbers of `reco` against `truth` for the event multiplicities `weights`
    [1 + B, n_events] (module docstring)."""
    n_events = len(truth.counts)
    jets = {name: cluster_jets(p.pt, p.eta, p.phi, p.counts, radius=config.jet_radius)
            for name, p in (("gen", truth), ("reco", reco))}
    match = match_jets(jets["gen"], jets["reco"], n_events, pt_min=config.jet_pt_min,
                       eta_max=config.jet_eta_max, max_dr=config.match_dr)
    ok = match.matched
    jet_ratio = match.reco_pt[ok] / match.gen_pt[ok]
    numbers = {}
    numbers["jet_response"], numbers["jet_resolution"] = response_resolution(jet_ratio, match.event[ok], weights)
    with np.errstate(divide="ignore", invalid="ignore"):
        gen_jets = weights @ np.bincount(match.event, minlength=n_events)
        numbers["jet_matching_efficiency"] = (weights @ np.bincount(match.event[ok], minlength=n_events)) / gen_jets

    met_gen, met_reco = missing_et(truth), missing_et(reco)
    gen_size, reco_size = np.hypot(*met_gen.T), np.hypot(*met_reco.T)
    has_met = gen_size > config.met_min_gev
    met_ratio = reco_size[has_met] / gen_size[has_met]
    numbers["met_response"], numbers["met_resolution"] = response_resolution(met_ratio, np.flatnonzero(has_met), weights)
    delta = met_reco - met_gen
    numbers["met_sigma_gev"] = sigma_iqr(delta.ravel(), np.repeat(np.arange(n_events), 2), weights)
    return Reconstruction(per_resample=numbers, jet_ratio=jet_ratio, met_ratio=met_ratio, met=reco_size,
                          n_gen_jets=len(ok), n_matched_jets=int(ok.sum()))


def class_rates(counts: pd.DataFrame, config: ml_collections.ConfigDict) -> dict[str, dict]:
    """Per class name: efficiency and fake_rate ({value, ci_low, ci_high}), n_true, n_pred."""
    specs = {}
    for name in PARTICLE_CLASSES[1:]:
        specs[f"efficiency_{name}"] = ("ratio", f"n_match_{name}", f"n_true_{name}")
        specs[f"fake_rate_{name}"] = ("ratio_complement", f"n_match_{name}", f"n_pred_{name}")
    boot = bootstrap_metrics(counts, specs, n_boot=int(config.n_boot), level=float(config.level), seed=int(config.seed))
    out = {}
    for name in PARTICLE_CLASSES[1:]:
        out[name] = {k: {f: boot[f"{k}_{name}"][f] for f in ("value", "ci_low", "ci_high")}
                     for k in ("efficiency", "fake_rate")}
        out[name].update(n_true=int(counts[f"n_true_{name}"].sum()), n_pred=int(counts[f"n_pred_{name}"].sum()))
    return out


def evaluate_particle_flow(targets: Sequence[np.ndarray], reconstructions: Mapping[str, Sequence[np.ndarray]],
                           config: ml_collections.ConfigDict | None = None) -> tuple[dict, dict]:
    """Metrics of each reconstruction against the targets, and what the report plots.

    Args:
      targets: per event, the element targets [N_i, len(TARGET_COLUMNS)].
      reconstructions: name (e.g. 'ml', 'baseline') -> per event rows [N_i, len(TARGET_COLUMNS)]
        for the same elements. The first is compared with each other one: differences first - other.
      config: `default_pflow_evaluation_config()` or a variant.
    Returns:
      (metrics: {n_events, settings, bootstrap, algorithms: {name: {classes, jets, met}},
      differences: [first - second, first - third, ...], difference: the first of them ({} with
      one reconstruction)}, plot data: {name: Reconstruction}, 'class_counts' {name: DataFrame}).
      With one event the intervals are nan (one event says nothing about the spread).
    """
    config = config or default_pflow_evaluation_config()
    level, n_boot = float(config.level), int(config.n_boot)
    n_events = len(targets)
    weights = np.ones((1, n_events))
    if n_events > 1:
        weights = np.concatenate([weights, resample_weights(n_events, n_boot, int(config.seed))])
    truth = particles_from_rows(targets)
    algorithms, plots, counts = {}, {}, {}
    for name, rows in reconstructions.items():
        rec = reconstruction_numbers(truth, particles_from_rows(rows), weights, config)
        n = rec.per_resample
        counts[name] = class_counts(targets, rows)
        algorithms[name] = {
            "classes": class_rates(counts[name], config),
            "jets": {"response": interval(n["jet_response"], level), "resolution": interval(n["jet_resolution"], level),
                     "matching_efficiency": interval(n["jet_matching_efficiency"], level),
                     "n_gen_jets": rec.n_gen_jets, "n_matched": rec.n_matched_jets},
            "met": {"response": interval(n["met_response"], level), "resolution": interval(n["met_resolution"], level),
                    "sigma_gev": interval(n["met_sigma_gev"], level), "n_events_above_min": int(len(rec.met_ratio))},
        }
        plots[name] = rec
    first, *others = list(reconstructions)
    a = plots[first].per_resample
    differences = [{"of": f"{first} - {other}",
                    **{key: interval(a[key] - plots[other].per_resample[key], level) for key in DIFFERENCE_KEYS}}
                   for other in others]
    metrics = {"n_events": n_events, "n_particles_gen": int(len(truth.pt)),
               "settings": {k: config[k] for k in ("jet_radius", "jet_pt_min", "jet_eta_max", "match_dr", "met_min_gev")},
               "bootstrap": {"n_boot": n_boot if n_events > 1 else 0, "level": level, "seed": int(config.seed),
                             "unit": "event"},
               "algorithms": algorithms, "differences": differences,
               "difference": differences[0] if differences else {}}
    return metrics, {"reconstructions": plots, "class_counts": counts}


# ---------------------------------------------------------------------------------------------
# A trained run on events of a directory (reads the run and the events; the report module writes)
# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass
class PflowRun:
    """A pflow run's resolved config, task, model and restored parameters."""

    workdir: Path
    config: ml_collections.ConfigDict
    task: Any
    model: Any
    params: Any
    step: int
    which: str  # 'best', 'latest' or 'step'
    model_overrides: tuple = ()  # 'key=value' changes to config.model made for this evaluation

    @property
    def name(self) -> str:
        """The run directory's name and its model changes, e.g. 'run_lsh (dense=true)'."""
        return self.workdir.name + (f" ({', '.join(self.model_overrides)})" if self.model_overrides else "")


def load_pflow_run(workdir: str | os.PathLike, checkpoint: str = "best",
                   model_overrides: Sequence[str] = ()) -> PflowRun:
    """`<workdir>/config.json` and the parameters of its checkpoint `checkpoint` ('best' (the
    latest when none is marked), 'latest' or a step number). Only reads. InputError when the
    directory is no pflow run or has no such checkpoint; a damaged 'best'/'latest' one is
    skipped for the newest that restores, with one line on stderr. `model_overrides`
    ('key=value' of config.model, e.g. 'dense=true') change the model that the parameters are
    evaluated with (ConfigError naming an unknown key; `predict_events` refuses a change of the
    parameters' shapes)."""
    from gnntrack.config import CONFIG_FILE_NAME, apply_overrides, load_config
    from gnntrack.nn.models import build_model
    from gnntrack.tasks import make_task, model_config_for
    from gnntrack.train.checkpoint import CHECKPOINT_DIR_NAME, restore_run_checkpoint

    workdir = Path(workdir)
    if not (workdir / CONFIG_FILE_NAME).exists():
        raise InputError(f"{workdir}: not a run directory ({CONFIG_FILE_NAME} not found)")
    config = load_config(workdir / CONFIG_FILE_NAME)
    name = config.get("task", ml_collections.ConfigDict()).get("name", "edge")
    if name != "pflow":
        raise InputError(f"{workdir}: a run of the {name!r} task, not 'pflow'")
    state, step, which = restore_run_checkpoint(workdir / CHECKPOINT_DIR_NAME, config, checkpoint)
    if "momentum_targets" not in config.task:  # saved before the key existed: absolute targets
        with config.unlocked():
            config.task.momentum_targets = "absolute"
    task = make_task(config.task)
    params = state["params"] if isinstance(state, dict) else state.params
    overrides = tuple(model_overrides)
    apply_overrides(config, [f"model.{item}" for item in overrides])
    return PflowRun(workdir=workdir, config=config, task=task, model=build_model(model_config_for(task, config.model)),
                    params=params, step=int(step), which=which, model_overrides=overrides)


def select_events(run: PflowRun, input_dir: str | os.PathLike, limit: int = 0,
                  events: Sequence[PflowEvent] | None = None) -> tuple[list[PflowEvent], str]:
    """The events of `input_dir` to evaluate and how they were chosen: when it is the run's own
    data.input_dir, only the run's test events (it trained on the others), else all of them;
    the first `limit` (0 = all). `events`: the directory's events when already read."""
    events = list(read_events(input_dir) if events is None else events)
    selection = "all events"
    test = own_test_ids(run, input_dir, [e.event_id for e in events])
    if test is not None:
        events = [e for e in events if e.event_id in test]
        selection = "the run's test events (the others trained or validated it)"
    return (events[:limit] if limit else events), selection


def own_test_ids(run: PflowRun, input_dir: str | os.PathLike, event_ids: Sequence[int]) -> set[int] | None:
    """The run's test split of `event_ids` (all the events of `input_dir`) when `input_dir` is the
    run's own data.input_dir; None for any other directory."""
    data = run.config.data
    own = data.get("input_dir", "")
    if not own or Path(os.path.expanduser(own)).resolve() != Path(input_dir).resolve():
        return None
    _, _, test = split_event_ids(np.array(event_ids, np.int64), int(data.n_train), int(data.n_val),
                                 int(data.n_test), str(input_dir))
    return set(test.tolist())


def predict_events(run: PflowRun, events: Sequence[PflowEvent]) -> tuple[list[np.ndarray], dict]:
    """The model's per-element rows [N_i, len(TARGET_COLUMNS)] of every event (`prediction_rows`)
    and the task's element-level summary (`test_` keys), through the engine's one prediction path
    (`gnntrack.train.evaluation.evaluate_graphs` with the eval step) on one device. ConfigError
    when config.json no longer fits the checkpoint."""
    import jax

    from gnntrack.graphs.batching import batch_iterator, make_ladder
    from gnntrack.train.checkpoint import shape_mismatch
    from gnntrack.train.evaluation import eval_batching_config, evaluate_graphs
    from gnntrack.train.parallel import DataParallel, default_parallel_config
    from gnntrack.train.state import TrainState, device_slice
    from gnntrack.train.step import make_eval_step

    graphs = [run.task.attach_targets(event_graph(e)) for e in events]
    batching = run.config.batching  # saved resolved: every key of today's batching config
    eval_config = eval_batching_config(batching, len(graphs))
    ladder = make_ladder(graphs, eval_config, 1)
    first = next(batch_iterator(graphs, eval_config, 1, ladder=ladder, shuffle=False, drop_remainder=False))
    expected = jax.eval_shape(lambda g: run.model.init(jax.random.PRNGKey(0), g, train=False),
                              device_slice(first.graph))["params"]
    detail = shape_mismatch(run.params, expected)
    if detail is not None and run.model_overrides:
        raise ConfigError(f"model changes {', '.join(run.model_overrides)} do not fit the parameters of "
                          f"{run.workdir} (checkpoint {run.step}): {detail}. Only changes that keep the "
                          f"parameters (e.g. dense, bin_size) can be made at evaluation")
    if detail is not None:
        raise ConfigError(f"{run.workdir / 'config.json'} does not fit checkpoint {run.step}: {detail}. "
                          "Was config.json edited? Undo the edit to evaluate this run")
    parallel = default_parallel_config()
    parallel.n_devices = 1
    dp = DataParallel(parallel)
    p_eval = dp.eval_step(make_eval_step(run.model, task=run.task))
    state = dp.put_state(TrainState(step=np.int32(0), params=run.params, opt_state=(), rng=jax.random.PRNGKey(0)))
    summary, preds = evaluate_graphs(lambda batch: p_eval(state, batch), graphs, batching, 1, task=run.task,
                                     ladder=ladder, prefix="test_")
    rows = [prediction_rows(s, c, v) for s, c, v in zip(preds["scores"], preds["charge"], preds["values"])]
    return rows, summary


def evaluate_pflow_run(workdir: str | os.PathLike, input_dir: str | os.PathLike,
                       out_dir: str | os.PathLike | None = None, *,
                       config: ml_collections.ConfigDict | None = None) -> dict:
    """Evaluates a trained pflow run on the events of `input_dir` (`select_events`) against the
    baseline stored with them, and writes report.md, plots/ and metrics.json into `out_dir`
    (default `<workdir>/evaluation`) with `gnntrack.report.pflow.write_pflow_report`.

    With `config.compare` (another pflow run's directory; its 'best' checkpoint, changed by
    `config.compare_model_overrides`) that run is evaluated on the same events as a third
    reconstruction, named by `PflowRun.name`, and the differences ML - baseline and ML - it are
    paired over the same resamples. Returns the metrics written to metrics.json."""
    from gnntrack.report.pflow import write_pflow_report

    config = config or default_pflow_evaluation_config()
    t0 = time.process_time()
    run = load_pflow_run(workdir, str(config.checkpoint), tuple(config.model_overrides))
    every = read_events(input_dir)
    events, selection = select_events(run, input_dir, int(config.limit), every)
    every_id = [e.event_id for e in every]
    del every  # the unselected events are not needed any more
    if not events:
        raise InputError(f"{input_dir}: no events to evaluate")
    ml, summary = predict_events(run, events)
    reconstructions = {"ml": ml, "baseline": [e.baseline for e in events]}
    other = None
    if config.compare:
        other = load_pflow_run(config.compare, "best", tuple(config.compare_model_overrides))
        check_unseen(other, input_dir, events, every_id)
        reconstructions[other.name] = predict_events(other, events)[0]
    metrics, plot_data = evaluate_particle_flow([e.targets for e in events], reconstructions, config)
    metrics["elements"] = summary
    metrics["run"] = run_info(run)
    if other is not None:
        metrics["compare"] = run_info(other)
    metrics["input"] = {"dir": str(input_dir), "selection": selection,
                        "event_ids": [int(e.event_id) for e in events]}
    metrics["cpu_s"] = time.process_time() - t0
    out_dir = Path(out_dir) if out_dir is not None else Path(workdir) / "evaluation"
    write_pflow_report(out_dir, metrics, plot_data, plots=bool(config.plots))
    return metrics


def run_info(run: PflowRun) -> dict:
    """What metrics.json says about an evaluated run: directory, checkpoint, model, changes."""
    return {"workdir": str(run.workdir), "name": run.name, "checkpoint": run.which, "step": run.step,
            "model": run.config.model.get("name", "?"), "message": run.config.model.get("message", None),
            "model_overrides": list(run.model_overrides)}


def check_unseen(run: PflowRun, input_dir: str | os.PathLike, events: Sequence[PflowEvent],
                 every_id: Sequence[int]) -> None:
    """InputError when `events` come from `run`'s own data directory (whose event ids are
    `every_id`) but are not all among its test events: a compared run must not be scored on
    events it trained or validated on."""
    test = own_test_ids(run, input_dir, every_id)
    if test is None:
        return
    seen = sorted(e.event_id for e in events if e.event_id not in test)
    if seen:
        raise InputError(f"--compare {run.workdir}: events {seen[:5]}{' ...' if len(seen) > 5 else ''} of "
                         f"{input_dir} trained or validated that run; compare runs on events neither saw")
