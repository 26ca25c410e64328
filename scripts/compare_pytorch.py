#!/usr/bin/env python
"""gnntrack (JAX) vs plain PyTorch eager on the HEP.TrkX segment classifier, same machine, same run.

    pip install -e ".[torch]"
    python scripts/compare_pytorch.py                      # reference workload + scaling table
    python scripts/compare_pytorch.py --no-scaling --repeats 5
    python scripts/compare_pytorch.py --cpus 1      # 1 core, 1 thread each, timed by CPU time:
                                                    # steady ratios even on a busy machine

Reference workload (issue 6): hidden 64, 8 iterations, 3 node features, float32, one random graph
of 20,000 nodes and 80,000 edges, Adam, weighted BCE. Each repeat times ours then PyTorch back to
back (medians of --steps timed steps after --warmup), so the ratios compare like with like even
on a busy machine; the table reports the median over repeats of each number and of each ratio.

PyTorch side: the published model written plainly (torch.cat of gathered rows, index_add_
scatter, nn.LayerNorm/nn.Tanh, torch.optim.Adam), loaded with *our* initial parameters; the
script checks that both give the same logits before timing.

FLOP floor: `gnntrack.bench.model_flops` counts the FLOPs of the *naive* (impl="reference")
train step and of ours (matmuls and per-edge sums, from the model's structure: XLA's cost
analysis would miss the fused kernels' work); every matmul of the naive step is then timed alone
on its own shapes, giving this machine's matmul rate for the step; floor = naive FLOPs / that
rate. "ours / floor" <= 1.5 is the issue's goal.

Attainable bound: the same timing on *our* step's matmuls (impl="fast" arithmetic, unchunked)
and on our forward pass gives the time those matmuls alone take here with XLA's matmuls;
PyTorch's time over it is the largest speed-up an implementation of this arithmetic built from
XLA ops could show on this machine (everything that is not a matmul counted as free). The fused
CPU kernels do their own matmuls (and do them faster), so with them the step can beat it.

On a GPU (JAX's default backend "gpu"), PyTorch runs on CUDA too (--torch-device), each timed
call waits for the device (torch.cuda.synchronize / block_until_ready), float32 matmuls are
pinned to the same precision in both frameworks (--matmul-precision: strict float32 unless tf32
is asked for; the frameworks' own defaults differ), and the scaling table adds each side's peak
device memory. The FLOP floor there times each matmul alone, launch overhead included, so it is
an upper bound on the floor rather than a rate-limited one.

Scaling: each size runs in a fresh subprocess (so peak RSS is per size); sizes above
--remat-above edges (default: none) use model.remat=--remat-mode (default "iteration": each
message-passing iteration recomputed in the backward pass; compiled train step at 1M edges
~3.4 GiB instead of ~13.4 GiB, see scripts/remat_memory.py). --remat-mode mlp is the old
per-network remat, which does not lower XLA:CPU's peak memory for this model.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

import numpy as np


# ---------------------------------------------------------------------------------------------
# PyTorch model (plain eager, as in the published HEP.TrkX sparse implementation).


def build_torch_model(params, hidden, n_iters, in_dim=3):
    import torch
    from torch import nn

    def mlp(in_features, sizes, final_activation):
        layers = []
        for i, size in enumerate(sizes):
            layers.append(nn.Linear(in_features if i == 0 else sizes[i - 1], size))
            if i < len(sizes) - 1 or final_activation:
                layers += [nn.LayerNorm(size, eps=1e-6), nn.Tanh()]
        return nn.Sequential(*layers)

    class SegmentClassifier(nn.Module):
        def __init__(self):
            super().__init__()
            d = in_dim + hidden
            self.input_net = mlp(in_dim, [hidden], True)
            self.edge_net = mlp(2 * d, [hidden] * 3 + [1], False)
            self.node_net = mlp(3 * d, [hidden] * 4, True)

        def edge(self, x, s, r):
            return self.edge_net(torch.cat([x[s], x[r]], dim=1)).squeeze(-1)

        def forward(self, raw, s, r):
            x = torch.cat([self.input_net(raw), raw], dim=1)
            for _ in range(n_iters):
                x0 = x
                w = torch.sigmoid(self.edge(x, s, r))[:, None]
                m_in = torch.zeros_like(x).index_add_(0, r, w * x[s])
                m_out = torch.zeros_like(x).index_add_(0, s, w * x[r])
                x = self.node_net(torch.cat([m_in, m_out, x], dim=1))
                x = torch.cat([x, raw], dim=1) + x0
            return self.edge(x, s, r)

    model = SegmentClassifier()
    with torch.no_grad():  # copy our (flax) parameters: Dense kernel [in, out] = Linear.weight.T
        for name, seq in (("input_net", model.input_net), ("edge_net", model.edge_net),
                          ("node_net", model.node_net)):
            dense = [m for m in seq if isinstance(m, nn.Linear)]
            norms = [m for m in seq if isinstance(m, nn.LayerNorm)]
            for i, lin in enumerate(dense):
                lin.weight.copy_(torch.from_numpy(np.asarray(params[name][f"dense_{i}"]["kernel"]).T.copy()))
                lin.bias.copy_(torch.from_numpy(np.array(params[name][f"dense_{i}"]["bias"])))
            for i, ln in enumerate(norms):
                ln.weight.copy_(torch.from_numpy(np.array(params[name][f"norm_{i}"]["scale"])))
                ln.bias.copy_(torch.from_numpy(np.array(params[name][f"norm_{i}"]["bias"])))
    return model


def time_torch(params, graph, y, hidden, n_iters, steps, warmup, pos_weight=1.0):
    import torch

    if os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    device = torch.device(TORCH_DEVICE)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"compare_pytorch: --torch-device {TORCH_DEVICE}, but this PyTorch "
                         f"({torch.__version__}) sees no CUDA device; pass --torch-device cpu")
    if device.type == "cuda":  # like-for-like with JAX's matmul precision (see --matmul-precision)
        torch.backends.cuda.matmul.allow_tf32 = MATMUL_PRECISION == "tf32"
        torch.backends.cudnn.allow_tf32 = MATMUL_PRECISION == "tf32"
    model = build_torch_model(params, hidden, n_iters).to(device)
    raw = torch.from_numpy(np.array(graph.nodes)).to(device)
    s = torch.from_numpy(np.asarray(graph.senders).astype(np.int64)).to(device)
    r = torch.from_numpy(np.asarray(graph.receivers).astype(np.int64)).to(device)
    yt = torch.from_numpy(np.array(y)).to(device)
    weight = torch.where(yt > 0.5, pos_weight, 1.0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    with torch.no_grad():
        logits0 = model(raw, s, r).cpu().numpy().copy()
    # CUDA runs asynchronously: a timed call ends only when the device has finished its work.
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def train():
        opt.zero_grad(set_to_none=True)
        logits = model(raw, s, r)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, yt, weight=weight)
        loss.backward()
        opt.step()
        sync()
        return loss

    def infer():
        with torch.no_grad():
            out = torch.sigmoid(model(raw, s, r))
        sync()
        return out

    out = dict(train_ms=_median_ms(train, warmup, steps), infer_ms=_median_ms(infer, warmup, steps),
               logits0=logits0, threads=torch.get_num_threads(), version=torch.__version__,
               device=str(device))
    if device.type == "cuda":
        out["peak_device_gb"] = torch.cuda.max_memory_allocated(device) / 1024 ** 3
    return out


CPU_TIME = False  # set by --cpus 1: time with process CPU time (robust on a shared machine)
TORCH_DEVICE = "cpu"  # set by --torch-device ("auto": cuda when JAX's default backend is a GPU)
MATMUL_PRECISION = "default"  # set by --matmul-precision (GPU only: float32 | tf32)


def _median_ms(call, warmup, steps):
    from gnntrack.bench import median_seconds

    return 1e3 * median_seconds(call, warmup, steps, cpu_time=CPU_TIME)


# ---------------------------------------------------------------------------------------------
# Ours.


def our_model(hidden, n_iters, overrides):
    """The segment classifier of `overrides` ({"impl": "fast" | "reference", ...the form's
    options}; no impl: the reference)."""
    from gnntrack.nn.models import FastSegmentClassifier, SegmentClassifier

    options = dict(overrides)
    form = FastSegmentClassifier if options.pop("impl", "reference") == "fast" else SegmentClassifier
    return form(hidden=hidden, n_iters=n_iters, **options)


def setup_ours(nodes, edges, hidden, n_iters, overrides, seed=0):
    import jax
    import jax.numpy as jnp
    import optax
    from gnntrack.bench import make_infer_step, make_train_step, random_graph

    graph, y = random_graph(nodes, edges, 3, 0, seed)
    model = our_model(hidden, n_iters, overrides)
    g, yy = jax.device_put((graph, y))
    mask = jnp.ones_like(yy)
    params = jax.jit(model.init)(jax.random.key(seed), g)["params"]
    tx = optax.adam(1e-3)
    return dict(model=model, graph=graph, y=y, g=g, yy=yy, mask=mask, params=params, tx=tx,
                train_step=make_train_step(model, tx, donate=True), infer=make_infer_step(model))


def time_ours(o, steps, warmup):
    import jax
    state = {"p": jax.tree_util.tree_map(lambda a: a.copy(), o["params"])}
    state["o"] = o["tx"].init(state["p"])

    def train():
        state["p"], state["o"], loss = o["train_step"](state["p"], state["o"], o["g"], o["yy"], o["mask"])
        return loss

    return dict(train_ms=_median_ms(train, warmup, steps),
                infer_ms=_median_ms(lambda: o["infer"](state["p"], o["g"]), warmup, steps))


def flop_floor(nodes, edges, hidden, n_iters, overrides, repeats):
    """FLOPs of the naive and our train step (counted from the models: gnntrack.bench.model_flops)
    and the matmul floor."""
    import jax
    from gnntrack.bench import make_loss_fn, matmul_floor, model_flops

    naive = setup_ours(nodes, edges, hidden, n_iters, {})
    # The matmul census (a jaxpr walk) sees neither the fused CPU kernels' matmuls nor a loop
    # body more than once, so our matmuls are timed on the unchunked XLA form of our arithmetic.
    ours = setup_ours(nodes, edges, hidden, n_iters,
                      {**overrides, "chunk_size": 0, "remat": False, "cpu_kernels": "xla"})
    naive_count = model_flops(naive["model"], nodes, edges, 3)
    ours_count = model_flops(our_model(hidden, n_iters, overrides),
                             nodes, edges, 3)
    out = dict(naive_flops=naive_count["train_step"], ours_flops=ours_count["train_step"],
               ours_executed_flops=ours_count["executed"], ours_flops_form=ours_count["form"])

    def grad_fn(o):
        loss_fn = make_loss_fn(o["model"])
        return lambda p: jax.value_and_grad(loss_fn)(p, o["g"], o["yy"], o["mask"], 1.0)

    mm = matmul_floor(grad_fn(naive), naive["params"], repeats=repeats, cpu_time=CPU_TIME)
    out["matmul_gflops_per_s"] = mm["matmul_gflops_per_s"]
    out["floor_ms"] = 1e3 * out["naive_flops"] / (mm["matmul_gflops_per_s"] * 1e9)
    # Attainable bound for *our* arithmetic: every matmul of our train step (and of our forward
    # pass) timed alone on its own shapes and summed -- what the step would take if everything
    # else (gathers, scatters, LayerNorm, tanh, Adam, loop overhead) were free. PyTorch's time
    # over this is the best speed-up any implementation of this arithmetic could show here.
    out["ours_train_matmul_ms"] = 1e3 * matmul_floor(
        grad_fn(ours), ours["params"], repeats=repeats, cpu_time=CPU_TIME)["dot_seconds"]
    forward = lambda p: ours["model"].apply({"params": p}, ours["g"])  # noqa: E731
    out["ours_infer_matmul_ms"] = 1e3 * matmul_floor(
        forward, ours["params"], repeats=repeats, cpu_time=CPU_TIME)["dot_seconds"]
    return out


# ---------------------------------------------------------------------------------------------


def compare(args):
    import jax
    from gnntrack.nn.models import cpu_kernels_label
    from gnntrack.runtime import host_allocator_label
    overrides = json.loads(args.overrides)
    o = setup_ours(args.nodes, args.edges, args.hidden, args.n_iters, overrides)
    ours_logits = np.asarray(jax.jit(o["model"].apply)({"params": o["params"]}, o["g"]))
    rows = []
    torch_info = None
    for rep in range(args.repeats):
        row = {f"ours_{k}": v for k, v in time_ours(o, args.steps, args.warmup).items()}
        if not args.skip_torch:
            t = time_torch(o["params"], o["graph"], o["y"], args.hidden, args.n_iters, args.steps, args.warmup)
            torch_info = t
            row.update(torch_train_ms=t["train_ms"], torch_infer_ms=t["infer_ms"])
            row["train_speedup"] = row["torch_train_ms"] / row["ours_train_ms"]
            row["infer_speedup"] = row["torch_infer_ms"] / row["ours_infer_ms"]
        rows.append(row)
        print(f"  repeat {rep + 1}/{args.repeats}: " + ", ".join(f"{k}={v:.4g}" for k, v in row.items()),
              flush=True)
    summary = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    if torch_info is not None:
        summary["max_abs_logit_diff_vs_torch"] = float(np.abs(torch_info["logits0"] - ours_logits).max())
        summary["torch_threads"] = torch_info["threads"]
        summary["torch_version"] = torch_info["version"]
        summary["torch_device"] = torch_info["device"]
        if "peak_device_gb" in torch_info:
            summary["torch_peak_device_gb"] = torch_info["peak_device_gb"]
    if not args.no_floor:
        summary.update(flop_floor(args.nodes, args.edges, args.hidden, args.n_iters, overrides, args.floor_repeats))
        summary["ours_over_floor"] = summary["ours_train_ms"] / summary["floor_ms"]
        summary["ours_gflops_per_s"] = summary["ours_flops"] / summary["ours_train_ms"] / 1e6
        summary["ours_executed_gflops_per_s"] = (summary["ours_executed_flops"]
                                                 / summary["ours_train_ms"] / 1e6)
        summary["naive_equiv_gflops_per_s"] = summary["naive_flops"] / summary["ours_train_ms"] / 1e6
        if "torch_train_ms" in summary:
            summary["best_train_speedup"] = summary["torch_train_ms"] / summary["ours_train_matmul_ms"]
            summary["best_infer_speedup"] = summary["torch_infer_ms"] / summary["ours_infer_matmul_ms"]
    summary["ours_edges_per_s"] = args.edges / summary["ours_train_ms"] * 1e3
    if "torch_train_ms" in summary:
        summary["torch_edges_per_s"] = args.edges / summary["torch_train_ms"] * 1e3
    summary.update(nodes=args.nodes, edges=args.edges, hidden=args.hidden, n_iters=args.n_iters,
                   overrides=overrides, repeats=args.repeats, steps=args.steps,
                   jax_version=jax.__version__, cpu_count=len(os.sched_getaffinity(0)),
                   clock="process CPU time" if CPU_TIME else "wall-clock",
                   device=jax.devices()[0].device_kind, matmul_precision=MATMUL_PRECISION,
                   host_allocator=host_allocator_label(), cpu_kernels=cpu_kernels_label(o["model"]))
    stats = jax.devices()[0].memory_stats() or {}  # accelerators only; None on CPU
    if "peak_bytes_in_use" in stats:
        summary["ours_peak_device_gb"] = stats["peak_bytes_in_use"] / 1024 ** 3
    return summary


def print_table(s):
    def f(key, fmt="{:.1f}"):
        return fmt.format(s[key]) if key in s else "n/a"
    print(f"\nSegment classifier, hidden {s['hidden']}, {s['n_iters']} iterations, {s['nodes']:,} nodes, "
          f"{s['edges']:,} edges, Adam + weighted BCE, float32; {s['cpu_count']} CPU cores; "
          f"jax {s['jax_version']} on {s['device']}, torch {s.get('torch_version', 'n/a')} on "
          f"{s.get('torch_device', 'n/a')}; matmul precision {s['matmul_precision']}; "
          f"host allocator {s.get('host_allocator', 'n/a')}; "
          f"CPU kernels {s.get('cpu_kernels', 'n/a')}; "
          f"model options {s['overrides']}")
    print(f"{s['clock']}; medians over {s['repeats']} repeats of (median of {s['steps']} steps), "
          f"ours and PyTorch back to back\n")
    print("| | ours (JAX) | PyTorch eager | PyTorch / ours |")
    print("|---|---:|---:|---:|")
    print(f"| train step (ms) | {f('ours_train_ms')} | {f('torch_train_ms')} | {f('train_speedup', '{:.2f}x')} |")
    print(f"| inference (ms) | {f('ours_infer_ms')} | {f('torch_infer_ms')} | {f('infer_speedup', '{:.2f}x')} |")
    print(f"| train edges/s | {f('ours_edges_per_s', '{:,.0f}')} | {f('torch_edges_per_s', '{:,.0f}')} | |")
    print()
    print("| FLOPs and floor | |")
    print("|---|---:|")
    print(f"| naive train-step FLOPs (counted: matmuls + per-edge sums) | {f('naive_flops', '{:.3g}')} |")
    print(f"| our train-step FLOPs ({s.get('ours_flops_form', 'n/a')}) | {f('ours_flops', '{:.3g}')} |")
    print(f"| ... plus the forward work our backward pass recomputes | {f('ours_executed_flops', '{:.3g}')} |")
    print(f"| matmul rate on the naive step's shapes (GFLOP/s) | {f('matmul_gflops_per_s')} |")
    print(f"| FLOP floor = naive FLOPs / matmul rate (ms) | {f('floor_ms')} |")
    print(f"| ours / floor | {f('ours_over_floor', '{:.2f}')} |")
    print(f"| achieved GFLOP/s (our FLOPs / our time) | {f('ours_gflops_per_s')} |")
    print(f"| executed GFLOP/s (with the recomputation) | {f('ours_executed_gflops_per_s')} |")
    print(f"| naive-equivalent GFLOP/s (naive FLOPs / our time) | {f('naive_equiv_gflops_per_s')} |")
    print()
    print("| bound for our arithmetic in XLA ops (its matmuls alone in XLA, everything else free) "
          "| train | inference |")
    print("|---|---:|---:|")
    print(f"| our matmuls alone in XLA at this machine's rate (ms) | {f('ours_train_matmul_ms')} "
          f"| {f('ours_infer_matmul_ms')} |")
    print(f"| PyTorch / that = best speed-up from XLA ops | {f('best_train_speedup', '{:.2f}x')} "
          f"| {f('best_infer_speedup', '{:.2f}x')} |")
    print(f"| ours / that (time outside the matmuls, as a factor) | "
          f"{_ratio(s, 'ours_train_ms', 'ours_train_matmul_ms')} | {_ratio(s, 'ours_infer_ms', 'ours_infer_matmul_ms')} |")
    if "max_abs_logit_diff_vs_torch" in s:
        print(f"| max abs logit difference, ours vs PyTorch, same params | {s['max_abs_logit_diff_vs_torch']:.2e} |")


def _ratio(s, num, den):
    return f"{s[num] / s[den]:.2f}" if num in s and den in s else "n/a"


def scaling(args):
    sizes = [int(v) for v in args.scaling_edges.split(",")]
    rows = []
    for edges in sizes:
        nodes = max(edges // 4, 8)
        overrides = json.loads(args.overrides)
        if edges > args.remat_above:
            overrides["remat"] = {"true": True, "false": False}.get(args.remat_mode, args.remat_mode)
        cmd = [sys.executable, __file__, "--child", "--nodes", str(nodes), "--edges", str(edges),
               "--hidden", str(args.hidden), "--n-iters", str(args.n_iters),
               "--steps", str(args.scaling_steps), "--warmup", "1", "--overrides", json.dumps(overrides)]
        cmd += ["--torch-device", args.torch_device, "--matmul-precision", args.matmul_precision,
                "--host-allocator", args.host_allocator]
        if args.cpus:
            cmd += ["--cpus", str(args.cpus)] + (["--wall"] if args.wall else [])
        if edges > args.torch_max_edges or args.skip_torch:
            cmd.append("--skip-torch")
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            print(f"  {edges:>9,} edges: FAILED\n{out.stderr[-2000:]}")
            continue
        row = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(f"  {edges:>9,} edges: ours {row['ours_train_ms']:.1f} ms"
              + (f", torch {row['torch_train_ms']:.1f} ms" if "torch_train_ms" in row else "")
              + f", peak RSS {row['peak_rss_gb']:.2f} GiB"
              + (f", ours peak device memory {row['ours_peak_device_gb']:.2f} GiB"
                 if "ours_peak_device_gb" in row else "")
              + (f", PyTorch's {row['torch_peak_device_gb']:.2f} GiB"
                 if "torch_peak_device_gb" in row else ""), flush=True)
    if not rows:
        return rows
    base = rows[0]
    print("\n| edges | nodes | remat | ours train (ms) | µs / edge | time ÷ linear from smallest | ours infer (ms) "
          "| PyTorch train (ms) | peak RSS (GiB) |")
    print("|---:|---:|:-:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        linear = base["ours_train_ms"] * r["edges"] / base["edges"]
        print(f"| {r['edges']:,} | {r['nodes']:,} | {_remat_label(r['overrides'].get('remat'))} "
              f"| {r['ours_train_ms']:.1f} | {1e3 * r['ours_train_ms'] / r['edges']:.2f} "
              f"| {r['ours_train_ms'] / linear:.2f} | {r['ours_infer_ms']:.1f} "
              f"| {r['torch_train_ms']:.1f} | " if "torch_train_ms" in r else
              f"| {r['edges']:,} | {r['nodes']:,} | {_remat_label(r['overrides'].get('remat'))} "
              f"| {r['ours_train_ms']:.1f} | {1e3 * r['ours_train_ms'] / r['edges']:.2f} "
              f"| {r['ours_train_ms'] / linear:.2f} | {r['ours_infer_ms']:.1f} | n/a | ", end="")
        print(f"{r['peak_rss_gb']:.2f} |")
    if len(rows) > 1:
        slope = loglog_slope([r["edges"] for r in rows], [r["ours_train_ms"] for r in rows])
        print(f"\ntrain time ∝ edges^{slope:.2f} (least-squares fit over the sizes; 1.00 = linear)")
    return rows


def loglog_slope(sizes, times):
    """Least-squares slope of log(time) against log(size): 1 for time linear in size. One noisy
    size moves it much less than it moves the ratio to the smallest size."""
    return float(np.polyfit(np.log(np.asarray(sizes, float)), np.log(np.asarray(times, float)), 1)[0])


def _remat_label(value):
    return {None: "no", False: "no", "none": "no", True: "mlp"}.get(value, str(value))


def pin_cpus(n):
    """Restricts this process to n CPUs and n compute threads; must run before jax/torch import."""
    cpus = sorted(os.sched_getaffinity(0))[:n]
    os.sched_setaffinity(0, cpus)
    flags = os.environ.get("XLA_FLAGS", "")
    if n == 1 and "xla_cpu_multi_thread_eigen" not in flags:
        flags += " --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    os.environ["XLA_FLAGS"] = flags.strip()
    os.environ["OMP_NUM_THREADS"] = str(n)
    os.environ["MKL_NUM_THREADS"] = str(n)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nodes", type=int, default=20_000)
    p.add_argument("--edges", type=int, default=80_000)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--n-iters", type=int, default=8)
    p.add_argument("--steps", type=int, default=5, help="timed steps per repeat (median)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3, help="ours-then-PyTorch rounds")
    p.add_argument("--overrides", default='{"impl": "fast"}', help="JSON options for ours: impl and that form's fields")
    p.add_argument("--skip-torch", action="store_true")
    p.add_argument("--no-floor", action="store_true")
    p.add_argument("--floor-repeats", type=int, default=5)
    p.add_argument("--no-scaling", action="store_true")
    p.add_argument("--scaling-edges", default="10000,30000,100000,300000,1000000")
    p.add_argument("--scaling-steps", type=int, default=3)
    p.add_argument("--remat-above", type=int, default=10 ** 12,
                   help="scaling sizes above this many edges use model.remat=--remat-mode")
    p.add_argument("--remat-mode", default="iteration",
                   help="model.remat above --remat-above: iteration | mlp (default: iteration)")
    p.add_argument("--torch-max-edges", type=int, default=300_000,
                   help="PyTorch eager needs ~30 GB at 1M edges; skip it above this size")
    p.add_argument("--cpus", type=int, default=0,
                   help="pin this process (and children) to the first N CPUs and use N threads in "
                        "both XLA and PyTorch (0 = all). --cpus 1 gives stable ratios on a busy machine")
    p.add_argument("--wall", action="store_true", help="with --cpus 1: wall-clock instead of CPU time")
    p.add_argument("--torch-device", default="auto",
                   help="cpu | cuda | auto (cuda when JAX's default backend is a GPU)")
    p.add_argument("--matmul-precision", default="auto", choices=["auto", "float32", "tf32"],
                   help="GPU float32 matmuls in both frameworks: float32 (strict; auto on a GPU) "
                        "or tf32 (JAX's and PyTorch's TensorFloat-32). No effect on CPU.")
    p.add_argument("--host-allocator", default="hugepages", choices=["hugepages", "default"],
                   help="hugepages: re-run this script with glibc's huge-page tunable, as the "
                        "gnntrack command does (gnntrack/runtime.py; PyTorch in this process "
                        "gets it alike); default: without it")
    p.add_argument("--json", default=None, help="also write all results to this JSON file")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if argv is None:  # run as a command (not called from Python): glibc reads it at start
        from gnntrack.runtime import reexec_with_hugepages
        reexec_with_hugepages(args.host_allocator == "hugepages")
    if args.cpus:
        pin_cpus(args.cpus)
    global CPU_TIME, TORCH_DEVICE, MATMUL_PRECISION
    CPU_TIME = args.cpus == 1 and not args.wall
    import jax
    on_gpu = jax.default_backend() == "gpu"
    TORCH_DEVICE = ("cuda" if on_gpu else "cpu") if args.torch_device == "auto" else args.torch_device
    if on_gpu:
        # The frameworks' defaults differ on a GPU (JAX may use TF32 for float32 matmuls, PyTorch
        # does not by default): pin both to the same precision so the comparison is like for like.
        MATMUL_PRECISION = "float32" if args.matmul_precision == "auto" else args.matmul_precision
        jax.config.update("jax_default_matmul_precision",
                          "tensorfloat32" if MATMUL_PRECISION == "tf32" else "float32")

    if args.child:  # one scaling point: print one JSON line with peak RSS
        args.repeats, args.no_floor = 1, True
        s = compare(args)
        from gnntrack.bench import peak_rss_bytes
        s["peak_rss_gb"] = peak_rss_bytes() / 1024 ** 3
        print(json.dumps(s))
        return 0

    print("reference workload:", flush=True)
    summary = compare(args)
    print_table(summary)
    result = {"reference": summary}
    if not args.no_scaling:
        print("\nscaling (fresh process per size):", flush=True)
        result["scaling"] = scaling(args)
    if args.json:
        with open(args.json + ".tmp", "w") as fh:
            json.dump(result, fh, indent=1, default=str)
        os.replace(args.json + ".tmp", args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
