"""Particle-flow scaling: MLPF's train step vs event size, LSH bins vs the quadratic reference,
float32 vs bfloat16; the bin recall vs bin size; bf16 vs fp32 training loss.

    gnntrack pflow bench --json out.json                     # all three parts
    gnntrack pflow bench --part scaling --sizes 1000,2000,4000 --messages lsh,dense
    gnntrack pflow bench --part training --steps 300
    gnntrack bench --model mlpf --nodes 8000                 # one train step's time and memory

Events are toy particle-flow events (`gnntrack.testing.pflow_event`: elements and targets in the
layouts of the real data; not physics), one event of N elements per step.

scaling: for each N, dtype and message ('lsh', 'dense' = the same model with one bin,
'kernel_attention'), the engine's train step (`gnntrack.train.step.make_train_step` with the
pflow task, Adam) on one event: median wall-clock and process CPU time (all XLA threads; the
steadier of the two on a shared machine) of `--repeats` steps after two warm-up calls, and
XLA's compiled memory of the step (`gnntrack.bench.compiled_memory`: arguments + outputs +
temporaries at the peak; compile only). 'dense' runs only while that memory stays under
`--dense-max-gb`. Then the exponent b of time and memory ~ N^b per (message, dtype): a least
squares line in log-log over all sizes, and over the sizes >= `--fit-from` (fixed per-step costs
flatten the small sizes).

recall: the fraction of element pairs from the same particle that share an LSH bin, vs bin
size, with the distance space (a) the elements' (eta, phi) direction (eta, sin φ, cos φ) and
(b) the first message layer's learned `distance` projection of the model trained in part
'training' (the one the model bins with), on a toy event of `--recall-size` elements.

training: the same model, data, order and seed trained `--steps` steps in float32 and in
bfloat16 compute (float32 parameters and Adam state); the final loss (mean of the last tenth of
the steps, and the loss on held-out events in float32), and seconds per step.
"""

from __future__ import annotations

import argparse
import json
import time

import jax
import jax.numpy as jnp
import jraph
import ml_collections
import numpy as np
import optax

from gnntrack.bench import compiled_memory
from gnntrack.errors import InputError
from gnntrack.graphs.batching import DeviceBatch
from gnntrack.nn import build_model, default_model_config
from gnntrack.nn.layers.lsh import lsh_bins
from gnntrack.pflow.types import ELEMENT_FEATURES
from gnntrack.tasks import default_task_config, make_task
from gnntrack.testing import pflow_event
from gnntrack.train.parallel import DEFAULT_AXIS, DataParallel
from gnntrack.train.state import TrainState
from gnntrack.train.step import make_train_step

MESSAGES = ("lsh", "dense", "kernel_attention")  # 'dense': the LSH model with one bin (quadratic)
DTYPES = ("float32", "bfloat16")
ELEMENTS_PER_PARTICLE = 1.7  # toy events: a track and/or a cluster per particle, plus noise


def toy_event(n_elements: int, seed: int):
    """A toy event cut to exactly `n_elements` elements (a random subset: elements come shuffled)."""
    rng = np.random.default_rng(seed)
    n_particles = int(n_elements / ELEMENTS_PER_PARTICLE) + 8
    while True:
        g = pflow_event(rng, n_particles, event_id=seed, noise_clusters=n_particles // 8)
        if g.n_nodes >= n_elements:
            break
        n_particles = int(n_particles * 1.2)
    return g.graph.nodes[:n_elements], g.node_y[:n_elements], g.particle_id[:n_elements]


def device_batch(nodes: np.ndarray, node_y: np.ndarray, n_pad: int | None = None) -> DeviceBatch:
    """One event as a one-device DeviceBatch (no device axis), its nodes padded to n_pad."""
    n = len(nodes)
    graph = jraph.GraphsTuple(nodes=nodes, edges=np.zeros((0, 1), np.float32), senders=np.zeros(0, np.int32),
                              receivers=np.zeros(0, np.int32), n_node=np.array([n], np.int32),
                              n_edge=np.array([0], np.int32), globals=None)
    node_y = np.asarray(node_y, np.float32)
    if n_pad is not None and n_pad > n:
        graph = jraph.pad_with_graphs(graph, n_node=n_pad, n_edge=1, n_graph=2)
        node_y = np.concatenate([node_y, np.zeros((n_pad - n, node_y.shape[1]), np.float32)])
    n_all = graph.nodes.shape[0]
    return DeviceBatch(graph=graph, y=np.zeros(len(graph.senders), np.float32),
                       edge_mask=np.zeros(len(graph.senders), bool), node_mask=np.arange(n_all) < n,
                       graph_mask=np.arange(len(graph.n_node)) == 0, node_y=node_y)


def model_of(message: str, dtype: str, **keys):
    cfg = default_model_config("mlpf")
    cfg.message = "kernel_attention" if message == "kernel_attention" else "lsh"
    cfg.dense = message == "dense"
    cfg.dtype = dtype
    cfg.update(keys)
    return build_model(cfg)


def engine_step(model, tx, task):
    """The engine's train step on one device, jitted `(state, batch) -> (state, loss)` with the
    state donated (as `gnntrack train` runs it)."""
    dp = DataParallel(ml_collections.ConfigDict(dict(mode="shard_map", n_devices=1, axis_name=DEFAULT_AXIS)))
    parallel = dp.train_step(make_train_step(model, tx, None, dp.axis_name, task=task), donate_state=False).jitted

    def step(state, batch):
        new_state, metrics = parallel(state, jax.tree_util.tree_map(lambda x: x[None], batch))
        return new_state, metrics["loss"]

    return jax.jit(step, donate_argnums=(0,))


def init_state(model, tx, batch, seed=0) -> TrainState:
    params = jax.jit(model.init)(jax.random.key(seed), batch.graph)["params"]
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params),
                      rng=jax.random.PRNGKey(seed))


def fit_exponent(sizes, values) -> float:
    """b of values ~ a N^b: least squares slope of log(values) vs log(sizes) (NaN with < 2 points)."""
    if len(sizes) < 2:
        return float("nan")
    return float(np.polyfit(np.log(sizes), np.log(values), 1)[0])


# ---------------------------------------------------------------------------------------------


def scaling_point(n: int, message: str, dtype: str, repeats: int, dense_max_bytes: float, **keys) -> dict:
    """One MLPF train step on a toy event of `n` elements (message in MESSAGES, dtype in DTYPES,
    `keys` other model keys): {n, message, dtype, peak_bytes, temp_bytes (compiled memory),
    compile_s (two untimed calls), step_s, step_cpu_s (medians of `repeats` timed steps)}; a dense
    step above `dense_max_bytes` is not run (step_s None, skipped 'memory')."""
    task = make_task(default_task_config("pflow"))
    model, tx = model_of(message, dtype, **keys), optax.adam(1e-3)
    nodes, node_y, _ = toy_event(n, seed=n)
    batch = device_batch(nodes, node_y)
    step = engine_step(model, tx, task)
    state = init_state(model, tx, batch)
    memory = compiled_memory(step, state, batch)
    row = dict(n=n, message=message, dtype=dtype, peak_bytes=memory["peak_bytes"], temp_bytes=memory["temp_bytes"])
    if message == "dense" and memory["peak_bytes"] > dense_max_bytes:
        return {**row, "step_s": None, "skipped": "memory"}
    holder = {"state": state}

    def call():
        holder["state"], loss = step(holder["state"], batch)
        return loss

    start = time.perf_counter()
    for _ in range(2):  # the second call compiles again: the first's outputs are committed arrays
        jax.block_until_ready(call())
    row["compile_s"] = time.perf_counter() - start
    wall, cpu = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        jax.block_until_ready(call())
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    row["step_s"], row["step_cpu_s"] = float(np.median(wall)), float(np.median(cpu))
    return row


def run_scaling(sizes, messages, dtypes, repeats, dense_max_bytes, fit_from, **keys) -> dict:
    rows = []
    for message in messages:
        for dtype in dtypes:
            for n in sizes:
                row = scaling_point(n, message, dtype, repeats, dense_max_bytes, **keys)
                rows.append(row)
                print(json.dumps(row), flush=True)
                jax.clear_caches()
                if row.get("skipped"):
                    break  # larger sizes need even more memory
    fits = []
    for message in messages:
        for dtype in dtypes:
            done = [r for r in rows if r["message"] == message and r["dtype"] == dtype and r["step_s"]]
            upper = [r for r in done if r["n"] >= fit_from]
            fit = dict(message=message, dtype=dtype, sizes=[r["n"] for r in done])
            for key in ("step_s", "step_cpu_s", "peak_bytes"):
                fit[f"{key}_exponent"] = fit_exponent([r["n"] for r in done], [r[key] for r in done])
                fit[f"{key}_exponent_from_{fit_from}"] = fit_exponent([r["n"] for r in upper], [r[key] for r in upper])
            fits.append(fit)
    return dict(rows=rows, fits=fits)


# ---------------------------------------------------------------------------------------------


def pair_recall(bin_of: np.ndarray, particle: np.ndarray) -> float:
    """Fraction of element pairs of one particle (particle > 0) that share a bin."""
    real = particle > 0
    _, per_particle = np.unique(particle[real], return_counts=True)
    _, per_particle_bin = np.unique(np.stack([particle[real], bin_of[real]]), axis=1, return_counts=True)
    pairs = np.sum(per_particle * (per_particle - 1) // 2)
    return float(np.sum(per_particle_bin * (per_particle_bin - 1) // 2) / pairs) if pairs else float("nan")


def bin_of_elements(z: np.ndarray, bin_size: int, n_buckets: int) -> np.ndarray:
    """int [N]: the LSH bin of each element of one event for points z [N, D]."""
    bins = lsh_bins(jnp.asarray(z, jnp.float32), np.array([len(z)], np.int32), bin_size, n_buckets)
    slot_element = np.asarray(bins.slot_element)
    out = np.full(len(z), -1)
    for b, row in enumerate(slot_element):
        out[row[row < len(z)]] = b
    return out


def run_recall(size: int, bin_sizes, n_buckets: int, params=None, seed: int = 12345) -> list[dict]:
    nodes, _, particle = toy_event(size, seed)
    col = {name: i for i, name in enumerate(ELEMENT_FEATURES)}
    spaces = {"eta_phi": nodes[:, [col["eta"], col["sin_phi"], col["cos_phi"]]]}
    if params is not None:
        spaces["trained"] = first_distance_points(params, device_batch(nodes, np.zeros((size, 7))).graph)
    rows = []
    for name, z in spaces.items():
        for b in bin_sizes:
            rows.append(dict(space=name, n=size, bin_size=b, n_buckets=n_buckets,
                             recall=pair_recall(bin_of_elements(z, b, n_buckets), particle),
                             chance=b / size))
            print(json.dumps(rows[-1]), flush=True)
    return rows


def first_distance_points(params, graph) -> np.ndarray:
    """float [N, distance_dim]: the points the trained model's first LSH layer hashes (its
    `distance` projection), captured from a forward pass (flax's capture_intermediates)."""
    model = model_of("lsh", "float32")
    _, state = jax.jit(lambda p, g: model.apply(
        {"params": p}, g, capture_intermediates=lambda mdl, _: mdl.name == "distance"))(params, graph)
    return np.asarray(state["intermediates"]["message_0"]["distance"]["__call__"][0])


# ---------------------------------------------------------------------------------------------


def run_training(dtype: str, steps: int, n_events: int, size_range, seed: int = 0, **keys) -> dict:
    """`steps` steps over `n_events` toy events (one per step, padded to one shape) in `dtype`."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(size_range[0], size_range[1] + 1, n_events + 4)
    events = [toy_event(int(n), seed=1000 + i) for i, n in enumerate(sizes)]
    n_pad = int(size_range[1])
    batches = [device_batch(nodes, y, n_pad) for nodes, y, _ in events]
    train, held_out = batches[:n_events], batches[n_events:]
    task = make_task(default_task_config("pflow"))
    model, tx = model_of("lsh", dtype, **keys), optax.adam(1e-3)
    step = engine_step(model, tx, task)
    state = init_state(model, tx, train[0], seed)
    losses, times, cpu = [], [], []
    for i in range(steps):  # the first two steps include compiling
        start, start_cpu = time.perf_counter(), time.process_time()
        state, loss = step(state, train[i % n_events])
        losses.append(float(loss))  # float() waits for the step
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    fp32 = model_of("lsh", "float32", **keys)
    held = [float(task.loss_sum(fp32.apply({"params": state.params}, b.graph), b) / task.count(b))
            for b in held_out]
    tail = max(steps // 10, 1)
    return dict(dtype=dtype, steps=steps, final_loss=float(np.mean(losses[-tail:])), first_loss=losses[0],
                held_out_loss=float(np.mean(held)), step_s=float(np.median(times[2:])),
                step_cpu_s=float(np.median(cpu[2:])),
                losses=losses[::10], params=jax.device_get(state.params))


def run(args: argparse.Namespace) -> dict:
    """The parts `args.part` names, each printed as JSON lines as it finishes; returns (and with
    --json writes, atomically) {device, args, scaling, training, recall}."""
    from gnntrack.io.atomic import write_json_atomic

    keys = dict(bin_size=args.bin_size, n_buckets=args.n_buckets)
    check_choices(args.messages, "--messages", MESSAGES)
    check_choices(args.dtypes, "--dtypes", DTYPES)
    options = {k: v for k, v in vars(args).items() if isinstance(v, (str, int, float, bool, type(None)))}
    out = dict(device=str(jax.devices()[0].device_kind), args=options)
    if args.part in ("all", "scaling"):
        out["scaling"] = run_scaling(int_list(args.sizes, "--sizes"), args.messages.split(","),
                                     args.dtypes.split(","), args.repeats, args.dense_max_gb * 2**30,
                                     args.fit_from, **keys)
        for fit in out["scaling"]["fits"]:
            print(json.dumps(fit), flush=True)
    params = None
    if args.part in ("all", "training"):
        size_range = int_list(args.train_sizes, "--train-sizes")
        runs = [run_training(d, args.steps, args.train_events, size_range, **keys) for d in ("float32", "bfloat16")]
        params = runs[0].pop("params")
        runs[1].pop("params")
        fp32, bf16 = runs
        out["training"] = dict(runs=runs, final_loss_rel_diff=(bf16["final_loss"] - fp32["final_loss"]) / fp32["final_loss"],
                               held_out_rel_diff=(bf16["held_out_loss"] - fp32["held_out_loss"]) / fp32["held_out_loss"],
                               bf16_speedup=fp32["step_s"] / bf16["step_s"],
                               bf16_speedup_cpu_time=fp32["step_cpu_s"] / bf16["step_cpu_s"])
        print(json.dumps({k: v for k, v in out["training"].items() if k != "runs"}), flush=True)
    if args.part in ("all", "recall"):
        out["recall"] = run_recall(args.recall_size, int_list(args.recall_bins, "--recall-bins"), args.n_buckets, params)
    if args.json:
        write_json_atomic(args.json, out)
    return out


def check_choices(text: str, flag: str, allowed: tuple[str, ...]) -> None:
    """InputError naming `flag` when the comma-separated `text` holds a name outside `allowed`."""
    bad = [v for v in str(text).split(",") if v not in allowed]
    if bad:
        raise InputError(f"{flag}: unknown {', '.join(map(repr, bad))}; choose from {', '.join(allowed)}")


def int_list(text: str, flag: str) -> list[int]:
    """'1000,2000' -> [1000, 2000]; InputError naming `flag` for anything but positive integers."""
    try:
        values = [int(v) for v in str(text).split(",")]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise InputError(f"{flag} must be a comma-separated list of positive integers, got {text!r}")
    return values
