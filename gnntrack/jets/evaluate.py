"""A trained jet tagger on jets: tagging metrics with intervals, the mass baseline on the same
jets, the model's size, FLOPs and latency.

    metrics = evaluate_jets_run("runs/pnl", "test")            # the run's own test split
    metrics = evaluate_jets_run("runs/pnl", "test.h5")         # any layout gnntrack.jets.formats reads

Scores are the sigmoid of the model's logit per jet, computed with the run's own input settings
(data.jets.n_constituents / features) through the same chunked inference that distillation uses
(`gnntrack.jets.distill.teacher_logits`). Metrics (`gnntrack.tasks.jets.jet_metrics`): accuracy
at 0.5, ROC AUC, background rejection 1/eps_B at signal efficiency 0.3 and 0.5, each with a
percentile bootstrap interval over jets; the jet-mass window (`gnntrack.jets.baseline`) on the
same jets, and the paired difference model - baseline of each metric on the same resamples.
Where the file carries per-jet training weights (the ATLAS layout), they are reported but the
metrics count jets unweighted.

Cost per jet: parameters, FLOPs per jet from XLA's cost analysis of the compiled forward pass at
batch 1024 (padded constituents included: the dense form computes them), and the median wall
time per jet of the jitted forward pass at batch 1 and batch 1024 on this machine's default
device. `gnntrack.report.jets` writes the report.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Sequence

import jax
import ml_collections
import numpy as np

from gnntrack.config import CONFIG_FILE_NAME, load_config
from gnntrack.errors import InputError
from gnntrack.jets.baseline import mass_window_score
from gnntrack.jets.distill import batched_graph, teacher_logits
from gnntrack.jets.formats import read_jets, take_jets
from gnntrack.jets.graphs import jet_inputs, jets_source_config, read_all, split_indices
from gnntrack.jets.types import JetArrays
from gnntrack.nn.registry import build_model
from gnntrack.tasks.jets import jet_metrics
from gnntrack.train.checkpoint import CHECKPOINT_DIR_NAME, restore_run_checkpoint
from gnntrack.train.state import param_count

TEST_SPLIT = "test"  # --input value: the run's own test jets


def default_jets_evaluation_config() -> ml_collections.ConfigDict:
    """Checkpoint choice, bootstrap settings, latency batches and repeats, plots."""
    return ml_collections.ConfigDict(dict(
        checkpoint="best", limit=0, n_boot=1000, level=0.95, seed=0, latency_batches=(1, 1024),
        latency_repeats=20, plots=True))


@dataclasses.dataclass
class JetsRun:
    """A jets run's config, its data.jets settings, model and restored parameters."""

    workdir: Path
    config: ml_collections.ConfigDict
    keys: ml_collections.ConfigDict
    model: Any
    params: Any
    step: int
    which: str  # 'best', 'latest' or 'step'


def load_jets_run(workdir: str | os.PathLike, checkpoint: str = "best") -> JetsRun:
    """The run in `workdir` and its checkpoint `checkpoint` ('best', 'latest' or a step). Only
    reads. InputError naming the directory when it is not a jets run or has no checkpoint."""
    workdir = Path(os.path.expanduser(str(workdir)))
    if not (workdir / CONFIG_FILE_NAME).is_file():
        raise InputError(f"{workdir}: not a run directory ({CONFIG_FILE_NAME} not found)")
    config = load_config(workdir / CONFIG_FILE_NAME)
    if config.data.get("source") != "jets":
        raise InputError(f"{workdir}: a run on data.source={config.data.get('source')!r}, not 'jets'")
    keys = jets_source_config()
    keys.update(config.data.get("jets", {}))
    state, step, which = restore_run_checkpoint(workdir / CHECKPOINT_DIR_NAME, config, str(checkpoint))
    params = state["params"] if isinstance(state, dict) else state.params
    return JetsRun(workdir, config, keys, build_model(config.model), params, int(step), which)


def select_jets(run: JetsRun, source: str, limit: int = 0) -> tuple[JetArrays, str]:
    """(jets, description): the run's test split when `source` is 'test' (the same seeded split
    that training used), else every jet of the file `source`; the first `limit` (0 = all)."""
    if source == TEST_SPLIT:
        keys = run.keys
        jets, _ = read_all(keys.paths, int(keys.limit))
        _, _, test = split_indices(len(jets), float(keys.val_fraction), float(keys.test_fraction),
                                   float(keys.fraction), int(keys.seed))
        jets, what = take_jets(jets, np.sort(test)), "the run's test split"
    else:
        if not Path(source).is_file():
            raise InputError(f"--input: no jet file at {source} (give a file or '{TEST_SPLIT}')")
        jets, what = read_jets(source), str(Path(source).resolve())
    if limit:
        jets = take_jets(jets, np.arange(min(limit, len(jets))))
    if not len(jets):
        raise InputError(f"--input {source}: no jets to evaluate")
    return jets, what


def model_scores(run: JetsRun, jets: JetArrays) -> np.ndarray:
    """float64 [J]: the model's probability that each jet is a top jet."""
    logits = teacher_logits(run.model, run.params, run.keys, jets).astype(np.float64)
    return 1.0 / (1.0 + np.exp(-logits))


def paired_intervals(scores: dict[str, np.ndarray], labels: np.ndarray, n_boot: int, level: float,
                     seed: int) -> tuple[dict[str, dict], dict[str, tuple[float, float]]]:
    """Bootstrap over jets, the same resamples for every scorer: (name -> metric -> (low, high),
    metric -> (low, high) of first scorer minus second). Percentile intervals at `level`."""
    rng = np.random.default_rng(seed)
    names = list(scores)
    draws = {name: {} for name in names}
    diffs: dict[str, list[float]] = {}
    for _ in range(n_boot):
        pick = rng.integers(0, len(labels), len(labels))
        values = {name: jet_metrics(scores[name][pick], labels[pick]) for name in names}
        for name in names:
            for metric, v in values[name].items():
                draws[name].setdefault(metric, []).append(v)
        if len(names) > 1:
            for metric, v in values[names[0]].items():
                diffs.setdefault(metric, []).append(v - values[names[1]][metric])
    tail = 50.0 * (1.0 - level)

    def interval(v):
        return float(np.nanpercentile(v, tail)), float(np.nanpercentile(v, 100.0 - tail))

    return ({name: {m: interval(v) for m, v in d.items()} for name, d in draws.items()},
            {m: interval(v) for m, v in diffs.items()})


def flops_per_jet(run: JetsRun, jets: JetArrays, batch: int) -> float:
    """XLA's FLOP count of the compiled forward pass on `batch` jets, per jet (nan if the
    backend gives none)."""
    graph = _batch_graph(run, jets, batch)
    apply = jax.jit(lambda p, g: run.model.apply({"params": p}, g, train=False))
    analysis = apply.lower(run.params, graph).compile().cost_analysis()
    if isinstance(analysis, (list, tuple)):
        analysis = analysis[0] if analysis else {}
    flops = (analysis or {}).get("flops", float("nan"))
    return float(flops) / batch


def latency_per_jet(run: JetsRun, jets: JetArrays, batch: int, repeats: int) -> float:
    """Median seconds per jet of the jitted forward pass on `batch` jets (after one warm-up call
    that compiles), over `repeats` calls."""
    graph = jax.device_put(_batch_graph(run, jets, batch))
    apply = jax.jit(lambda p, g: run.model.apply({"params": p}, g, train=False))
    params = jax.device_put(run.params)
    apply(params, graph).block_until_ready()
    times = []
    for _ in range(max(repeats, 1)):
        t0 = time.perf_counter()
        apply(params, graph).block_until_ready()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) / batch


def _batch_graph(run: JetsRun, jets: JetArrays, batch: int):
    """The first `batch` jets (repeated when there are fewer) as one padded jraph batch."""
    index = np.arange(batch) % len(jets)
    features, mask = jet_inputs(take_jets(jets, index), int(run.keys.n_constituents), run.keys.features)
    return batched_graph(features, mask, batch + 1)


def model_costs(run: JetsRun, jets: JetArrays, batches: Sequence[int], repeats: int) -> dict:
    """Parameters, FLOPs per jet (at the largest batch) and latency per jet at each batch."""
    return {"parameters": int(param_count(run.params)),
            "flops_per_jet": flops_per_jet(run, jets, max(batches)),
            "latency_s_per_jet": {str(b): latency_per_jet(run, jets, int(b), repeats) for b in batches},
            "device": str(jax.devices()[0].device_kind), "cpu": cpu_description()}


def cpu_description() -> str:
    """'<model name>, <n> cores[, AVX-512]' from /proc/cpuinfo where readable, else the platform's
    machine name: latencies mean little without the CPU they were measured on."""
    try:
        info = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"{platform.machine()}, {os.cpu_count()} cores"
    names = [line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")]
    wide = ", AVX-512" if " avx512f" in info else ""
    return f"{names[0] if names else platform.machine()}, {os.cpu_count()} cores{wide}"


def evaluate_jets_run(workdir: str | os.PathLike, source: str = TEST_SPLIT, out_dir: str | os.PathLike | None = None,
                      *, config: ml_collections.ConfigDict | None = None) -> dict:
    """Scores the run on `source` ('test' or a jet file), writes metrics.json, report.md, roc.npz
    and plots into `out_dir` (default `<workdir>/evaluation`) with `gnntrack.report.jets`.

    Returns the metrics written to metrics.json."""
    from gnntrack.report.jets import write_jets_report

    config = config or default_jets_evaluation_config()
    run = load_jets_run(workdir, str(config.checkpoint))
    jets, what = select_jets(run, source, int(config.limit))
    labels = jets.label.astype(np.int64)
    scores = {"model": model_scores(run, jets), "mass_window": mass_window_score(jets)}
    intervals, difference = paired_intervals(scores, labels, int(config.n_boot), float(config.level),
                                             int(config.seed))
    # a cut at 0.5 means nothing on -|m - m_top| (GeV): the baseline has no accuracy
    for d in (intervals["mass_window"], difference):
        d.pop("accuracy", None)
    metrics = {
        "run": {"workdir": str(Path(workdir).resolve()), "model": run.config.model.name, "step": run.step,
                "checkpoint": run.which, "n_constituents": int(run.keys.n_constituents),
                "features": run.keys.features},
        "input": {"source": what, "n_jets": int(len(jets)), "n_signal": int(labels.sum()),
                  "weighted": bool(np.any(jets.weight != 1.0))},
        "bootstrap": {"n_boot": int(config.n_boot), "level": float(config.level), "over": "jets"},
        "scorers": {name: {"metrics": {m: v for m, v in jet_metrics(s, labels).items() if m in intervals[name]},
                           "intervals": intervals[name]} for name, s in scores.items()},
        "difference": {"of": "model - mass_window", "intervals": difference},
        "costs": model_costs(run, jets, tuple(int(b) for b in config.latency_batches), int(config.latency_repeats)),
    }
    out = Path(out_dir) if out_dir is not None else Path(workdir) / "evaluation"
    write_jets_report(out, metrics, scores, labels, plots=bool(config.plots))
    return metrics
