#!/usr/bin/env python
"""Speed benchmark: the fast segment classifier against its reference formulation (ratios, small sizes).

    python scripts/bench_regression.py                 # ~1 minute on 2 cores
    python scripts/bench_regression.py --json          # the result as one JSON line

In one process, alternating, it times the train step (Adam + weighted BCE) and inference of
impl="fast" and impl="reference" on the same random graph with the same parameters, and
(optionally, when PyTorch is installed) a plain PyTorch eager version, and prints the medians and
the ratios. Ratios measured back to back are steadier than absolute times on a shared machine,
but they are still timings, so no test asserts them (the test suite only checks that this script
runs and reports). For whoever runs it by hand it exits 1 when

  * fast and reference logits differ by more than --logit-atol (same parameters), or
  * reference/fast train-step time < --min-train-speedup (default 1.1), or
  * reference/fast inference time < --min-infer-speedup (default 1.2).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time


def _time_alternating(calls: dict, rounds: int) -> dict:
    import jax
    for call in calls.values():  # compile + warm up
        jax.block_until_ready(call())
        jax.block_until_ready(call())
    times = {k: [] for k in calls}
    for _ in range(rounds):
        for key, call in calls.items():
            start = time.perf_counter()
            jax.block_until_ready(call())
            times[key].append(1e3 * (time.perf_counter() - start))
    return {k: statistics.median(v) for k, v in times.items()}


def measure(nodes: int, edges: int, hidden: int, n_iters: int, rounds: int) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    from gnntrack.bench import make_infer_step, make_train_step, random_graph
    from gnntrack.nn.models import FastSegmentClassifier, SegmentClassifier

    graph, y = random_graph(nodes, edges, seed=0)
    g, yy = jax.device_put((graph, y))
    mask = jnp.ones_like(yy)
    models = {impl: form(hidden=hidden, n_iters=n_iters)
              for impl, form in (("reference", SegmentClassifier), ("fast", FastSegmentClassifier))}
    params = jax.jit(models["reference"].init)(jax.random.key(0), g)["params"]
    tx = optax.adam(1e-3)
    calls, logits = {}, {}
    for impl, model in models.items():
        state = {"p": jax.tree_util.tree_map(jnp.copy, params)}
        state["o"] = tx.init(state["p"])
        step, infer = make_train_step(model, tx), make_infer_step(model)

        def train(state=state, step=step):
            state["p"], state["o"], loss = step(state["p"], state["o"], g, yy, mask)
            return loss

        calls[f"{impl}_train_ms"] = train
        calls[f"{impl}_infer_ms"] = lambda state=state, infer=infer: infer(state["p"], g)
        logits[impl] = np.asarray(jax.jit(model.apply)({"params": params}, g))
    try:
        import torch  # noqa: F401
        sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
        from compare_pytorch import build_torch_model
        tmodel = build_torch_model(params, hidden, n_iters)
        raw = torch.from_numpy(np.array(graph.nodes))
        s = torch.from_numpy(graph.senders.astype(np.int64))
        r = torch.from_numpy(graph.receivers.astype(np.int64))
        yt = torch.from_numpy(np.array(y))
        opt = torch.optim.Adam(tmodel.parameters(), lr=1e-3)

        def torch_train():
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(tmodel(raw, s, r), yt)
            loss.backward()
            opt.step()
            return loss.detach().numpy()

        def torch_infer():
            with torch.no_grad():
                return torch.sigmoid(tmodel(raw, s, r)).numpy()

        calls["torch_train_ms"], calls["torch_infer_ms"] = torch_train, torch_infer
    except ImportError:
        pass
    result = _time_alternating(calls, rounds)
    result["max_abs_logit_diff"] = float(np.abs(logits["fast"] - logits["reference"]).max())
    result["train_speedup_vs_reference"] = result["reference_train_ms"] / result["fast_train_ms"]
    result["infer_speedup_vs_reference"] = result["reference_infer_ms"] / result["fast_infer_ms"]
    if "torch_train_ms" in result:
        result["train_speedup_vs_torch"] = result["torch_train_ms"] / result["fast_train_ms"]
        result["infer_speedup_vs_torch"] = result["torch_infer_ms"] / result["fast_infer_ms"]
    result.update(nodes=nodes, edges=edges, hidden=hidden, n_iters=n_iters, rounds=rounds,
                  jax_version=jax.__version__)
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nodes", type=int, default=4_000)
    p.add_argument("--edges", type=int, default=16_000)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--n-iters", type=int, default=4)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--min-train-speedup", type=float, default=1.1)
    p.add_argument("--min-infer-speedup", type=float, default=1.2)
    p.add_argument("--logit-atol", type=float, default=1e-4)
    p.add_argument("--json", action="store_true", help="print the result as one JSON line")
    args = p.parse_args(argv)

    r = measure(args.nodes, args.edges, args.hidden, args.n_iters, args.rounds)
    if args.json:
        print(json.dumps(r))
    else:
        print(f"segment classifier hidden {args.hidden}, {args.n_iters} iterations, {args.nodes:,} nodes, "
              f"{args.edges:,} edges; medians of {args.rounds} alternating rounds (ms)")
        for key in ("fast_train_ms", "reference_train_ms", "torch_train_ms",
                    "fast_infer_ms", "reference_infer_ms", "torch_infer_ms"):
            if key in r:
                print(f"  {key:<20} {r[key]:10.1f}")
        for key in ("train_speedup_vs_reference", "infer_speedup_vs_reference",
                    "train_speedup_vs_torch", "infer_speedup_vs_torch", "max_abs_logit_diff"):
            if key in r:
                print(f"  {key:<28} {r[key]:.3g}")
    failures = []
    if not r["max_abs_logit_diff"] <= args.logit_atol:
        failures.append(f"fast and reference logits differ by {r['max_abs_logit_diff']:.3g} > {args.logit_atol}")
    if r["train_speedup_vs_reference"] < args.min_train_speedup:
        failures.append(f"train speed-up over reference {r['train_speedup_vs_reference']:.2f} "
                        f"< {args.min_train_speedup}")
    if r["infer_speedup_vs_reference"] < args.min_infer_speedup:
        failures.append(f"inference speed-up over reference {r['infer_speedup_vs_reference']:.2f} "
                        f"< {args.min_infer_speedup}")
    for failure in failures:
        print(f"REGRESSION: {failure}", file=sys.stderr)
    if not failures:
        print("OK: no regression")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
