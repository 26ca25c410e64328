"""`gnntrack bench`: time a model's train step and inference on a random graph; for `--model mlpf`
the engine's train step on a toy particle-flow event of --nodes elements (`gnntrack.pflow.bench`;
its scaling study is `gnntrack pflow bench`)."""

from __future__ import annotations

import argparse
import json

HELP = ("time one model's train step (Adam, weighted BCE) and inference on a random graph; "
        "FLOPs counted from the model (XLA's cost analysis beside them)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="segment_classifier",
                        help="segment_classifier | interaction_network | mlpf (one toy particle-flow event "
                             "of --nodes elements, after two untimed calls; --edges, --warmup, --seed unused)")
    parser.add_argument("--message", default="lsh",
                        help="mlpf: lsh (default) | dense (one bin: the quadratic reference) | kernel_attention")
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
    if args.model == "mlpf":
        return run_mlpf(args)
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
    return print_result(result, args.json)


def run_mlpf(args: argparse.Namespace) -> int:
    """MLPF's train step on one toy event of args.nodes elements: compiled memory and the median
    wall-clock and CPU time of args.steps steps (`gnntrack.pflow.bench.scaling_point`)."""
    from gnntrack.pflow.bench import DTYPES, MESSAGES, check_choices, scaling_point

    check_choices(args.message, "--message", MESSAGES)
    dtype = args.dtype or "float32"
    check_choices(dtype, "--dtype", DTYPES)
    keys = {"hidden": args.hidden} if args.hidden else {}
    return print_result(scaling_point(args.nodes, args.message, dtype, args.steps, float("inf"), **keys), args.json)


def print_result(result: dict, as_json: bool) -> int:
    """One JSON line, or one aligned 'key: value' line per entry; returns the exit code 0."""
    if as_json:
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
