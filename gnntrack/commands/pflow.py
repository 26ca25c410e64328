"""`gnntrack pflow simulate`: particle-flow events (Pythia 8 ttbar + pileup through a parametrised
detector) as elements, targets and the rule-based baseline's predictions. `gnntrack pflow bench`:
MLPF's train step vs event size (LSH bins vs the quadratic reference, fp32 vs bf16), the bin
recall vs bin size, bf16 vs fp32 training (`gnntrack.pflow.bench`).

    gnntrack pflow simulate --out data/pflow-mu50 --events 200 --pileup 50 --seed 1 --workers 2
    gnntrack pflow simulate --out data/pflow --events 10 --set ecal.noise_gev=0.05
    gnntrack pflow bench --part scaling --messages lsh,dense --json bench.json

Chunk k of --chunk-size events uses the seeds (--seed, k), so the chunk files are byte-identical
for the same arguments whatever --workers is. The settings, timings and chunk list go to
<out>/pflow.json, written last.
"""

from __future__ import annotations

import argparse

HELP = ("particle flow: simulate events (tracks and calorimeter clusters -> particles); benchmark MLPF's "
        "scaling with event size")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="pflow_command", metavar="COMMAND")
    sub.required = True
    sim = sub.add_parser("simulate", help="write Pythia 8 ttbar events with pileup through the detector",
                         description="write Pythia 8 ttbar events with pileup through the detector")
    sim.add_argument("--out", required=True, help="output directory")
    sim.add_argument("--events", type=int, default=10, help="number of events (default 10)")
    sim.add_argument("--pileup", type=float, default=0.0,
                     help="mean number of pileup collisions (Poisson; 0, 50, 200 ...; default 0)")
    sim.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    sim.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    sim.add_argument("--chunk-size", type=int, default=10, help="events per file (default 10)")
    sim.add_argument("--first-event-id", type=int, default=0, help="id of the first event (default 0)")
    sim.add_argument("--no-progress", action="store_true", help="no progress bar")
    sim.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                     help="any detector setting, e.g. --set ecal.noise_gev=0.05 (see gnntrack.pflow.config)")
    add_bench_arguments(sub.add_parser(
        "bench", help="MLPF train step vs event size (time, memory, fitted exponents), bin recall, bf16 vs fp32",
        description="particle-flow scaling: MLPF's train step vs event size, LSH bins vs the quadratic "
                    "reference, float32 vs bfloat16; the bin recall vs bin size; bf16 vs fp32 training loss"))


def add_bench_arguments(p: argparse.ArgumentParser) -> None:
    """The options of `gnntrack pflow bench` (`gnntrack.pflow.bench`: the parts and their sizes)."""
    p.add_argument("--part", default="all", choices=("all", "scaling", "recall", "training"))
    p.add_argument("--sizes", default="1000,2000,4000,8000,16000,32000,64000", help="elements per event (scaling)")
    p.add_argument("--messages", default="lsh,dense", help="lsh, dense and/or kernel_attention")
    p.add_argument("--dtypes", default="float32,bfloat16")
    p.add_argument("--repeats", type=int, default=5, help="timed steps per point (median)")
    p.add_argument("--dense-max-gb", type=float, default=6.0, help="skip larger dense steps")
    p.add_argument("--fit-from", type=int, default=4000, help="the second fit's smallest size")
    p.add_argument("--bin-size", type=int, default=128)
    p.add_argument("--n-buckets", type=int, default=16)
    p.add_argument("--recall-size", type=int, default=8000, help="elements of the recall event")
    p.add_argument("--recall-bins", default="16,32,64,128,256,512")
    p.add_argument("--steps", type=int, default=300, help="training steps per dtype (training)")
    p.add_argument("--train-events", type=int, default=16)
    p.add_argument("--train-sizes", default="600,1000", help="elements per training event: min,max")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")


def build_config(args):
    """The simulation config from the parsed arguments; raises ConfigError."""
    from gnntrack.config import apply_overrides
    from gnntrack.errors import ConfigError
    from gnntrack.pflow.config import default_pflow_config, validate_pflow_config

    for flag, value, low in (("--events", args.events, 1), ("--workers", args.workers, 1),
                             ("--chunk-size", args.chunk_size, 1), ("--seed", args.seed, 0)):
        if value < low:
            raise ConfigError(f"{flag} must be >= {low} (got {value})")
    config = default_pflow_config()
    config.pileup = args.pileup
    config.lock()
    apply_overrides(config, args.settings)
    validate_pflow_config(config)
    return config


def run(args) -> int:
    if args.pflow_command == "bench":
        from gnntrack.pflow.bench import run as run_bench

        run_bench(args)
        return 0
    from gnntrack.io.atomic import check_directory_path
    from gnntrack.pflow.simulate import simulate_to_directory

    check_directory_path(args.out, "--out")
    config = build_config(args)
    meta = simulate_to_directory(args.out, args.events, config, args.seed, workers=args.workers,
                                 chunk_size=args.chunk_size, first_event_id=args.first_event_id,
                                 progress=not args.no_progress)
    seconds = meta["seconds_per_event"]
    print(f"wrote {args.events} event(s) in {len(meta['chunks'])} chunk(s) to {args.out}: "
          f"{meta['elements_per_event']['mean']:.0f} elements per event, "
          f"{seconds['generation'] + seconds['detector']:.2f} s per event in a worker")
    return 0
