"""`gnntrack pflow simulate`: particle-flow events (Pythia 8 ttbar + pileup through a parametrised
detector) as elements, targets and the rule-based baseline's predictions.

    gnntrack pflow simulate --out data/pflow-mu50 --events 200 --pileup 50 --seed 1 --workers 2
    gnntrack pflow simulate --out data/pflow --events 10 --set ecal.noise_gev=0.05

Chunk k of --chunk-size events uses the seeds (--seed, k), so the chunk files are byte-identical
for the same arguments whatever --workers is. The settings, timings and chunk list go to
<out>/pflow.json, written last.
"""

from __future__ import annotations

import argparse

HELP = "particle flow: simulate events (tracks and calorimeter clusters -> particles)"


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
