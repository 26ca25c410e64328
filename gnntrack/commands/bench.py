"""`gnntrack bench`: time a model's train step and inference on a random graph."""

from __future__ import annotations

import argparse
import json

HELP = ("time one model's train step (Adam, weighted BCE) and inference on a random graph; "
        "FLOPs counted from the model (XLA's cost analysis beside them)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="segment_classifier",
                        help="segment_classifier | interaction_network")
    parser.add_argument("--hidden", type=int, default=None, help="hidden width (model default)")
    parser.add_argument("--n-iters", type=int, default=None, help="message-passing iterations")
    parser.add_argument("--nodes", type=int, default=20_000, help="nodes of the random graph")
    parser.add_argument("--edges", type=int, default=80_000, help="edges of the random graph")
    parser.add_argument("--steps", type=int, default=10, help="timed calls (median reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls after compilation")
    parser.add_argument("--impl", default=None, help="segment classifier: fast (default) | reference")
    parser.add_argument("--dtype", default=None, help="compute dtype: float32 | bfloat16")
    parser.add_argument("--remat", nargs="?", const="mlp", default=None, metavar="MODE",
                        help="recompute activations in the backward pass: mlp (also bare --remat) "
                             "| iteration (whole message-passing iterations; least memory) | none")
    parser.add_argument("--floor", action="store_true",
                        help="also time the step's matmuls alone (FLOP floor)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON line only")


def run(args: argparse.Namespace) -> int:
    from gnntrack.bench import run_benchmark
    from gnntrack.errors import InputError

    if args.nodes < 1 or args.edges < 1 or args.steps < 1 or args.warmup < 0:
        raise InputError("--nodes, --edges and --steps must be >= 1 and --warmup >= 0")
    overrides = {}
    if args.impl is not None:
        overrides["impl"] = args.impl
    if args.dtype is not None:
        overrides["compute_dtype"] = args.dtype
    if args.remat is not None:
        from gnntrack.nn.models import remat_mode
        overrides["remat"] = remat_mode({"true": True, "false": False}.get(args.remat.lower(),
                                                                          args.remat.lower()))
    result = run_benchmark(args.model, hidden=args.hidden, n_iters=args.n_iters, nodes=args.nodes,
                           edges=args.edges, steps=args.steps, warmup=args.warmup,
                           model_overrides=overrides, floor=args.floor, seed=args.seed)
    if args.json:
        print(json.dumps(result))
        return 0
    for key, value in result.items():
        print(f"{key:>30}: {_text(value)}")
    return 0


def _text(value) -> str:
    """4 significant digits for floats, also inside a dict (the FLOPs by phase and kind)."""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: " + (f"({_text(v)})" if isinstance(v, dict) else _text(v))
                         for k, v in value.items())
    return str(value)
