"""Device study: training throughput vs number of devices, weak / strong scaling, stragglers.

    config = load_config("experiments/scaling/devices.py")
    out = run_device_study(config, "runs/scaling/devices")     # results.csv / .md / .json + plots

Every device count runs in its own subprocess (`python -m gnntrack.studies.devices`), because the
number of forced host CPU devices (XLA_FLAGS=--xla_force_host_platform_device_count=N) is fixed
when JAX starts. With study.platform='auto' and real accelerators present, the subprocess uses
the first N real devices instead (counts above the available ones are skipped).

Measured per (device count, scaling mode, batching):
  strong scaling: a fixed global batch (study.strong_batch graphs) split over N devices;
  weak scaling: a fixed per-device batch (study.weak_per_device graphs), global = N x that;
  batching 'like_sized' (gnntrack.graphs.batching: largest-first dealing, balanced real edges)
  vs 'random' (the step's graphs cut into N consecutive chunks of the shuffled order);
  throughput (graphs/s, real edges/s) over `study.steps` timed steps after compilation;
  step-time breakdown: input (host batching + transfer, synchronous: no prefetch) vs compute
  (the jit step until its metrics are ready);
  straggler ratio: max / mean real edges per device per step (1 = perfectly balanced).
Efficiency (both modes): throughput(N) / (N x throughput(1)) for the same batching; for weak
scaling this is t_step(1) / t_step(N).

On a CPU host the N forced devices SHARE the host's cores: efficiency well below 1 is expected
and says nothing about real accelerators (the report says so).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import ml_collections
import numpy as np

from gnntrack.config import import_plugins
from gnntrack.errors import ConfigError, GnnTrackError
from gnntrack.io.atomic import write_json_atomic, write_text_atomic
from gnntrack.runtime import child_env, stop_with_parent

BATCHINGS = ("like_sized", "random")
MODES = ("strong", "weak")
PLATFORMS = ("cpu", "auto")


def default_device_study_config() -> ml_collections.ConfigDict:
    """The `study` section of a device study.

    Keys:
      kind: 'devices'.
      toy: planes-toy data (gnntrack.studies.toy_data.default_toy_data_config; a wide track-count
        range so graph sizes vary and stragglers can appear).
      device_counts: devices per run (each in a subprocess).
      platform: 'cpu' (forced host devices) or 'auto' (real accelerators when present).
      strong_batch: global graphs per step for strong scaling.
      weak_per_device: graphs per device per step for weak scaling.
      batchings: subset of ('like_sized', 'random').
      steps: timed steps per measurement; warmup_steps: untimed steps after compiling every rung.
      timeout_s: per subprocess; retries: reruns of a failed / timed-out subprocess.
      pjrt_nproc: PJRT_NPROC for the subprocess (XLA CPU client threads; 0 = max(2 N, cores)). With
        fewer client threads than forced devices the collectives of a step can deadlock.
    """
    from gnntrack.studies.toy_data import default_toy_data_config

    toy = default_toy_data_config()
    toy.n_events = 400
    toy.n_tracks_min = 3
    toy.n_tracks_max = 20
    return ml_collections.ConfigDict(dict(
        kind="devices", toy=toy, device_counts=(1, 2, 4, 8), platform="cpu", strong_batch=32,
        weak_per_device=4, batchings=BATCHINGS, steps=20, warmup_steps=2, timeout_s=600, retries=1,
        pjrt_nproc=0))


def split_device_study_config(config: ml_collections.ConfigDict
                              ) -> tuple[ml_collections.ConfigDict, ml_collections.ConfigDict]:
    """(base run config, validated study section merged over the defaults)."""
    from gnntrack.studies.study_runner import split_study_section

    base, merged = split_study_section(config, default_device_study_config)
    if merged.platform not in PLATFORMS:
        raise ConfigError(f"config key 'study.platform' must be one of {', '.join(PLATFORMS)}, got {merged.platform!r}")
    bad = [b for b in merged.batchings if b not in BATCHINGS]
    if bad or not merged.batchings:
        raise ConfigError(f"config key 'study.batchings' must be a non-empty subset of {BATCHINGS}, got {merged.batchings}")
    if not merged.device_counts or any(int(n) < 1 for n in merged.device_counts):
        raise ConfigError(f"config key 'study.device_counts' must list positive integers, got {merged.device_counts}")
    for key in ("strong_batch", "weak_per_device", "steps"):
        if int(merged[key]) < 1:
            raise ConfigError(f"config key 'study.{key}' must be >= 1, got {merged[key]}")
    return base, merged


# ---------------------------------------------------------------------------------------------
# Batching variants and statistics (pure, numpy)
# ---------------------------------------------------------------------------------------------

def deal_random(n_graphs: int, n_devices: int) -> list[np.ndarray]:
    """Positions 0..n_graphs-1 cut into n_devices consecutive chunks (sizes differ by <= 1): the
    'random' batching, since the step's order is already a random permutation."""
    return [np.asarray(a, dtype=np.int64) for a in np.array_split(np.arange(n_graphs), n_devices)]


def make_random_batch(graphs, ids: np.ndarray, n_devices: int, ladder, n_graph_pad: int, *, epoch: int = 0,
                      step: int = 0):
    """Like gnntrack.graphs.batching.make_batch, but with `deal_random` instead of like-sized
    dealing (same padding, masks and Batch layout)."""
    import jraph

    from gnntrack.graphs.batching import Batch, pad_device_batch

    ids = np.asarray(ids, dtype=np.int64)
    edges = np.array([graphs[i].n_edges for i in ids], dtype=np.int64)
    nodes = np.array([graphs[i].n_nodes for i in ids], dtype=np.int64)
    parts = deal_random(len(ids), n_devices)
    dev_edges = np.array([edges[p].sum() for p in parts], dtype=np.int64)
    dev_nodes = np.array([nodes[p].sum() for p in parts], dtype=np.int64)
    bucket = ladder.select(int(dev_nodes.max()), int(dev_edges.max()), what=f"epoch {epoch} step {step}")
    padded, ys = [], []
    graph_ids = np.full((n_devices, n_graph_pad), -1, dtype=np.int64)
    for d, part in enumerate(parts):
        dev_ids = ids[part]
        g, y = pad_device_batch([graphs[i] for i in dev_ids], bucket, n_graph_pad, template=graphs[ids[0]])
        padded.append(g)
        ys.append(y)
        graph_ids[d, :len(dev_ids)] = dev_ids
    stacked = jraph.GraphsTuple(*[None if padded[0][k] is None else np.stack([p[k] for p in padded])
                                  for k in range(len(padded[0]))])
    n_dev_graphs = np.array([len(p) for p in parts])
    return Batch(graph=stacked, y=np.stack(ys), edge_mask=np.arange(bucket.n_edge)[None, :] < dev_edges[:, None],
                 node_mask=np.arange(bucket.n_node)[None, :] < dev_nodes[:, None],
                 graph_mask=np.arange(n_graph_pad)[None, :] < n_dev_graphs[:, None],
                 n_real_edges=dev_edges, n_real_nodes=dev_nodes, graph_ids=graph_ids, n_graphs=int(len(ids)),
                 bucket=bucket, epoch=int(epoch), step=int(step))


def straggler_ratio(n_real_edges: np.ndarray) -> float:
    """max / mean real edges per device of one step ([D] array); 1.0 = balanced (nan if empty)."""
    e = np.asarray(n_real_edges, dtype=np.float64)
    mean = e.mean() if e.size else 0.0
    return float(e.max() / mean) if mean > 0 else float("nan")


def batches(graphs, batching_config, n_devices: int, ladder, batching: str, *, seed: int = 0):
    """Endless iterator of training Batches (epochs in turn) with the chosen dealing."""
    from gnntrack.graphs.batching import batch_iterator, epoch_order

    per_step = int(batching_config.graphs_per_step)
    n_graph_pad = max(-(-min(per_step, len(graphs)) // n_devices) + 1, 2)
    epoch = 0
    while True:
        if batching == "like_sized":
            yield from batch_iterator(graphs, batching_config, n_devices, ladder=ladder, seed=seed, epoch=epoch)
        else:
            order = epoch_order(len(graphs), seed, epoch, bool(batching_config.shuffle))
            for step in range(len(order) // per_step):
                yield make_random_batch(graphs, order[step * per_step:(step + 1) * per_step], n_devices, ladder,
                                        n_graph_pad, epoch=epoch, step=step)
        epoch += 1


# ---------------------------------------------------------------------------------------------
# Worker (runs inside the subprocess with N devices)
# ---------------------------------------------------------------------------------------------

def measure(config: ml_collections.ConfigDict, study: ml_collections.ConfigDict, n_devices: int,
            workdir: Path) -> list[dict[str, Any]]:
    """Throughput rows for every (mode, batching) on `n_devices` devices of this process."""
    import jax

    from gnntrack.graphs.batching import make_ladder
    from gnntrack.nn.models import build_model
    from gnntrack.train.data import prepare_data
    from gnntrack.train.losses import resolve_loss_config
    from gnntrack.train.optim import make_optimizer
    from gnntrack.train.parallel import DataParallel
    from gnntrack.train.state import device_slice, init_train_state
    from gnntrack.train.step import make_train_step

    config = ml_collections.ConfigDict(config.to_dict())
    config.parallel.n_devices = int(n_devices)
    dp = DataParallel(config.parallel)
    graphs = prepare_data(config, workdir, progress=False).train
    model = build_model(config.model)
    loss_cfg = resolve_loss_config(config.loss, (g.y for g in graphs))
    device = jax.devices()[0]
    rows = []
    for mode in MODES:
        global_batch = int(study.strong_batch) if mode == "strong" else int(study.weak_per_device) * n_devices
        if global_batch > len(graphs):
            raise ConfigError(f"study needs {global_batch} graphs per step but the data has {len(graphs)}; "
                              "raise data.n_train / study.toy.n_events")
        bcfg = ml_collections.ConfigDict(config.batching.to_dict())
        bcfg.graphs_per_step = global_batch
        # one ladder (built from like-sized dealing; its top rung covers any dealing with at most
        # ceil(G/D) graphs per device), so both batchings pick from the same compiled shapes
        ladder = make_ladder(graphs, bcfg, n_devices, seed=int(config.seed))
        tx, lr_fn = make_optimizer(config.optimizer, global_batch_size=global_batch)
        p_train = dp.train_step(make_train_step(model, tx, loss_cfg, dp.axis_name, lr_fn=lr_fn))
        # one compiled init (op-by-op initialisation would compile dozens of tiny kernels)
        init = jax.jit(lambda g: init_train_state(model, tx, g, seed=int(config.seed)))
        for batching in study.batchings:
            it = batches(graphs, bcfg, n_devices, ladder, batching, seed=int(config.seed))
            first = next(it)
            state = dp.put_state(jax.device_get(init(device_slice(first.graph))))
            # compile every rung once (untimed): a later new shape would be a compile in the timing
            n_graph_pad = int(first.graph_mask.shape[1])
            for bucket in list(ladder.buckets):
                state, m = p_train(state, dp.put_batch(probe_batch(graphs, bucket, n_devices, n_graph_pad)))
            for _ in range(int(study.warmup_steps)):
                state, m = p_train(state, dp.put_batch(next(it)))
            jax.block_until_ready(m)
            t_in = t_comp = 0.0
            graphs_done = edges_done = padded = 0
            ratios = []
            for _ in range(int(study.steps)):
                t0 = time.perf_counter()
                batch = next(it)
                placed = dp.put_batch(batch)
                jax.block_until_ready(placed)
                t1 = time.perf_counter()
                state, m = p_train(state, placed)
                jax.block_until_ready(m)
                t2 = time.perf_counter()
                t_in += t1 - t0
                t_comp += t2 - t1
                graphs_done += batch.n_graphs
                edges_done += int(batch.n_real_edges.sum())
                padded += batch.shape[0] * batch.shape[2]
                ratios.append(straggler_ratio(batch.n_real_edges))
            total = t_in + t_comp
            rows.append({
                "n_devices": n_devices, "mode": mode, "batching": batching, "global_batch": global_batch,
                "per_device_batch": global_batch / n_devices, "steps": int(study.steps),
                "graphs_per_s": graphs_done / total, "edges_per_s": edges_done / total,
                "compute_graphs_per_s": graphs_done / t_comp, "step_ms": 1e3 * total / int(study.steps),
                "input_ms": 1e3 * t_in / int(study.steps), "compute_ms": 1e3 * t_comp / int(study.steps),
                "input_fraction": t_in / total, "straggler_ratio": float(np.nanmean(ratios)),
                "straggler_ratio_max": float(np.nanmax(ratios)), "edge_utilisation": edges_done / max(padded, 1),
                "platform": device.platform, "device_kind": device.device_kind,
                "n_rungs": len(ladder.buckets),
            })
    return rows


def probe_batch(graphs, bucket, n_devices: int, n_graph_pad: int):
    """A DeviceBatch padded to `bucket`: the smallest graph on every device (to compile a rung
    before timing; the values do not matter)."""
    import jraph

    from gnntrack.graphs.batching import DeviceBatch, pad_device_batch

    small = min(graphs, key=lambda g: g.n_edges)
    g, y = pad_device_batch([small], bucket, n_graph_pad)
    stack = lambda x: None if x is None else np.stack([np.asarray(x)] * n_devices)  # noqa: E731
    graph = jraph.GraphsTuple(*[stack(x) for x in g])
    e, n = small.n_edges, small.n_nodes
    return DeviceBatch(graph=graph, y=stack(y), edge_mask=stack(np.arange(bucket.n_edge) < e),
                       node_mask=stack(np.arange(bucket.n_node) < n),
                       graph_mask=stack(np.arange(n_graph_pad) < 1))


def worker_main(payload_path: str, out_path: str) -> None:
    """Subprocess entry: measure and write the rows (JSON) atomically. Killed when the study's
    process dies (its result is written atomically: a rerun measures this count again)."""
    from gnntrack.studies.provenance import device_info

    stop_with_parent(signal.SIGKILL)
    payload = json.loads(Path(payload_path).read_text())
    config = ml_collections.ConfigDict(payload["config"])
    import_plugins(config)  # models or messages registered in the experiment's plug-ins
    study = ml_collections.ConfigDict(payload["study"])
    rows = measure(config, study, int(payload["n_devices"]), Path(payload["workdir"]))
    write_json_atomic(out_path, {"rows": rows, "devices": device_info()})


# ---------------------------------------------------------------------------------------------
# Parent: subprocesses, aggregation, writers
# ---------------------------------------------------------------------------------------------

def subprocess_env(n_devices: int, platform: str, pjrt_nproc: int = 0) -> dict[str, str]:
    """Environment for a worker with n forced host devices (platform 'cpu') or real devices;
    with huge pages for XLA's host buffers, as the gnntrack command has (gnntrack/runtime.py)."""
    env = child_env()
    env["TF_CPP_MIN_LOG_LEVEL"] = env.get("TF_CPP_MIN_LOG_LEVEL", "3")
    if platform == "cpu":
        flags = [f for f in env.get("XLA_FLAGS", "").split() if not f.startswith("--xla_force_host_platform_device_count")]
        env["XLA_FLAGS"] = " ".join(flags + [f"--xla_force_host_platform_device_count={int(n_devices)}"])
        env["JAX_PLATFORMS"] = "cpu"
        env["PJRT_NPROC"] = str(int(pjrt_nproc) or max(2 * int(n_devices), os.cpu_count() or 1))
    return env


def real_accelerators() -> int:
    """Number of non-CPU devices JAX sees in a fresh subprocess (0 if none)."""
    code = "import jax; print(sum(d.platform != 'cpu' for d in jax.devices()))"
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        return int(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else 0
    except (subprocess.SubprocessError, ValueError, IndexError):
        return 0


def run_worker(config: ml_collections.ConfigDict, study: ml_collections.ConfigDict, n_devices: int,
               workdir: Path, platform: str) -> dict[str, Any]:
    """Runs one device count in a subprocess (retrying on failure); returns its JSON or
    {'error': ...}. A finished count (devices/n<N>.json) is read back, not rerun."""
    out = workdir / "devices" / f"n{int(n_devices)}.json"
    if out.exists():
        return json.loads(out.read_text())
    payload = workdir / "devices" / f"n{int(n_devices)}.payload.json"
    write_json_atomic(payload, {"config": config.to_dict(), "study": study.to_dict(), "n_devices": int(n_devices),
                                "workdir": str(workdir)})
    code = "import sys; from gnntrack.studies.devices import worker_main; worker_main(sys.argv[1], sys.argv[2])"
    log_path = workdir / "devices" / f"n{int(n_devices)}.log"
    error = None
    for attempt in range(1 + int(study.retries)):
        with open(log_path, "ab") as log:
            try:
                proc = subprocess.run([sys.executable, "-c", code, str(payload), str(out)],
                                      env=subprocess_env(n_devices, platform, int(study.pjrt_nproc)),
                                      stdout=log, stderr=subprocess.STDOUT, timeout=float(study.timeout_s))
                if proc.returncode == 0 and out.exists():
                    return json.loads(out.read_text())
                error = f"exit code {proc.returncode} (attempt {attempt + 1}; see {log_path})"
            except subprocess.TimeoutExpired:
                error = f"timed out after {study.timeout_s} s (attempt {attempt + 1}; see {log_path})"
    return {"rows": [], "error": error}


def add_efficiency(df):
    """Adds `efficiency` = throughput(N) / (N x throughput(1)) per (mode, batching) (graphs/s)."""
    df = df.copy()
    df["efficiency"] = np.nan
    df["speedup"] = np.nan
    for (mode, batching), g in df.groupby(["mode", "batching"]):
        one = g[g.n_devices == g.n_devices.min()]
        if one.empty:
            continue
        base = float(one.graphs_per_s.iloc[0]) / float(one.n_devices.iloc[0])
        df.loc[g.index, "speedup"] = g.graphs_per_s / float(one.graphs_per_s.iloc[0])
        df.loc[g.index, "efficiency"] = g.graphs_per_s / (g.n_devices * base)
    return df


def results_markdown(df, prov: dict, notes: Sequence[str]) -> str:
    from gnntrack.studies.provenance import provenance_markdown

    lines = ["# Device study", "",
             "| devices | mode | batching | global batch | graphs/s | edges/s | efficiency | step ms | input ms | compute ms | straggler (mean / max) | edge util. |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for _, r in df.sort_values(["mode", "batching", "n_devices"]).iterrows():
        lines.append(f"| {r.n_devices} | {r['mode']} | {r.batching} | {r.global_batch} | {r.graphs_per_s:.1f} | "
                     f"{r.edges_per_s:.0f} | {r.efficiency:.2f} | {r.step_ms:.1f} | {r.input_ms:.1f} | {r.compute_ms:.1f} | "
                     f"{r.straggler_ratio:.3f} / {r.straggler_ratio_max:.3f} | {r.edge_utilisation:.2f} |")
    lines += ["", "## Notes", ""] + [f"- {n}" for n in notes] + ["", provenance_markdown(prov)]
    return "\n".join(lines) + "\n"


def device_study_notes(df, platform: str, errors: dict[int, str]) -> list[str]:
    notes = []
    if platform == "cpu" or (len(df) and (df.platform == "cpu").all()):
        notes.append(f"Forced host CPU devices share this host's {os.cpu_count()} cores: N devices do not "
                     "add compute, so efficiency ~ min(N, cores) / N at best; these numbers measure the "
                     "data-parallel machinery's overhead, not accelerator scaling.")
    for mode in MODES:
        for batching in BATCHINGS:
            g = df[(df["mode"] == mode) & (df.batching == batching)].sort_values("n_devices")
            if len(g):
                effs = ", ".join(f"{int(n)}: {e:.2f}" for n, e in zip(g.n_devices, g.efficiency))
                notes.append(f"{mode} scaling, {batching}: efficiency by devices {effs}.")
    if {"like_sized", "random"} <= set(df.batching):
        multi = df[df.n_devices > 1]
        for mode in MODES:
            ls = multi[(multi["mode"] == mode) & (multi.batching == "like_sized")].straggler_ratio.mean()
            rnd = multi[(multi["mode"] == mode) & (multi.batching == "random")].straggler_ratio.mean()
            if np.isfinite(ls) and np.isfinite(rnd):
                notes.append(f"{mode} scaling: mean straggler ratio (max/mean real edges per device) "
                             f"like-sized {ls:.3f} vs random {rnd:.3f} over N > 1.")
    input_frac = df.input_fraction.mean() if len(df) else float("nan")
    if np.isfinite(input_frac):
        notes.append(f"Input (host batching + transfer, no prefetch) takes {100 * input_frac:.0f}% of the step "
                     "time on average.")
    for n, err in errors.items():
        notes.append(f"{n} devices: FAILED ({err}).")
    return notes


def run_device_study(config: ml_collections.ConfigDict, workdir: str | os.PathLike, *, progress: bool = True
                     ) -> dict[str, Any]:
    """Runs (or resumes) the device study; writes results.csv / .md / .json and plots."""
    import pandas as pd
    from tqdm import tqdm

    from gnntrack.config import save_config
    from gnntrack.studies import scale_plots
    from gnntrack.studies.provenance import provenance, write_results_csv
    from gnntrack.studies.toy_data import apply_toy_data

    t0 = time.perf_counter()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    base, study = split_device_study_config(config)
    save_config(config, workdir)
    base = apply_toy_data(base, study, workdir, progress=progress)
    if not base.data.cache_dir:
        base.data.cache_dir = str((workdir / "data").resolve())
    platform = study.platform
    counts = [int(n) for n in study.device_counts]
    if platform == "auto":
        n_real = real_accelerators()
        if n_real:
            counts = [n for n in counts if n <= n_real]
        else:
            platform = "cpu"
    rows, errors, worker_devices = [], {}, {}
    bar = tqdm(counts, desc="device study", unit="device count", disable=not progress, dynamic_ncols=True)
    for n in bar:
        bar.set_postfix(devices=n, refresh=True)
        out = run_worker(base, study, n, workdir, platform)
        if out.get("error"):
            errors[n] = out["error"]
        rows.extend(out.get("rows", []))
        if out.get("devices"):
            worker_devices[n] = out["devices"]
    bar.close()
    if not rows:
        raise GnnTrackError(f"device study: every device count failed: {errors}")
    df = add_efficiency(pd.DataFrame(rows))
    prov = provenance(config, extra={"worker_devices": worker_devices, "platform": platform,
                                     "elapsed_s": time.perf_counter() - t0})
    notes = device_study_notes(df, platform, errors)
    write_results_csv(workdir / "results.csv", df, prov)
    files = scale_plots.write_device_plots(workdir, df)
    write_text_atomic(workdir / "results.md", results_markdown(df, prov, notes))
    write_json_atomic(workdir / "results.json", {"rows": json.loads(df.to_json(orient="records")), "notes": notes,
                                                 "errors": {str(k): v for k, v in errors.items()},
                                                 "plots": [p.name for p in files], "provenance": prov})
    return {"results": df, "notes": notes, "errors": errors, "files": files,
            "elapsed_s": time.perf_counter() - t0}


if __name__ == "__main__":  # python -m gnntrack.studies.devices PAYLOAD OUT
    worker_main(sys.argv[1], sys.argv[2])
