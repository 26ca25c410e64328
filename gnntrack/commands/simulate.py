"""`gnntrack simulate`: write TrackML-format events from the built-in detector simulation.

    gnntrack simulate --out data/sim --events 10 --pileup 200 --seed 1
    gnntrack simulate --out data/sim --events 2 --from-particles event000001000-particles.csv
    gnntrack simulate --out data/toy --events 5 --toy planes --toy-dims 3 --toy-curved
    gnntrack simulate --out data/luxe --detector luxe --particles 70000 --events 2 --seed 1

Event k is drawn from the random stream (seed, k), so the files are byte-identical for the same
arguments and event k does not depend on --events. The resolved settings are written to
<out>/simulation.json.
"""

from __future__ import annotations

import argparse

HELP = "simulate TrackML-like events (or LUXE-like crossings, or the planes toy) and write them as TrackML CSV"
DETECTORS = ("trackml", "luxe")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--detector", choices=DETECTORS, default="trackml",
                        help="trackml: the TrackML-like collider detector (default); luxe: LUXE-like "
                             "positron tracker, one bunch crossing per event (gnntrack.detector.luxe)")
    parser.add_argument("--events", type=int, default=1, help="number of events (default 1)")
    parser.add_argument("--pileup", type=float, default=200.0,
                        help="mean number of collisions per event, ~50 charged particles each (default 200)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--n-particles", "--particles", type=int, default=0,
                        help="fixed number of particles per event instead of --pileup "
                             "(luxe: positrons per crossing, default 70000)")
    parser.add_argument("--from-particles", metavar="FILE",
                        help="TrackML particles.csv(.gz) to simulate in every event instead of generating")
    parser.add_argument("--noise-fraction", type=float, default=None,
                        help="noise hits as a fraction of all hits (default 0.1; toy: 0)")
    parser.add_argument("--first-event-id", type=int, default=1000,
                        help="id of the first event (file prefix event<9 digits>, default 1000)")
    parser.add_argument("--compress", action="store_true", help="write .csv.gz")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                        help="any simulation (or toy) setting, e.g. --set multiple_scattering=False")
    toy = parser.add_argument_group("planes toy")
    toy.add_argument("--toy", choices=["planes"], help="simulate the planes toy instead of the detector")
    toy.add_argument("--toy-planes", type=int, default=10, help="number of planes (default 10)")
    toy.add_argument("--toy-tracks", type=int, default=50, help="tracks per event (default 50)")
    toy.add_argument("--toy-dims", type=int, choices=[2, 3], default=2, help="2D or 3D (default 2)")
    toy.add_argument("--toy-curved", action="store_true", help="curved (circular) instead of straight tracks")


def build_luxe_config(args):
    """The LUXE crossing config from the parsed arguments; raises ConfigError for options that
    only the TrackML-like detector has."""
    from gnntrack.config import apply_overrides
    from gnntrack.detector.luxe import default_luxe_config, validate_luxe_config
    from gnntrack.errors import ConfigError

    for flag, given in (("--toy", args.toy), ("--from-particles", args.from_particles),
                        ("--noise-fraction", args.noise_fraction is not None)):
        if given:
            raise ConfigError(f"{flag} does not apply to --detector luxe (noise: --set noise_per_pixel=...)")
    if args.events < 1:
        raise ConfigError(f"--events must be >= 1 (got {args.events})")
    config = default_luxe_config()
    if args.n_particles:
        config.n_particles = args.n_particles
    config.lock()
    apply_overrides(config, args.settings)
    validate_luxe_config(config)
    return config


def build_configs(args):
    """(simulation config, toy config or None) from the parsed arguments; raises ConfigError."""
    from gnntrack.config import apply_overrides
    from gnntrack.detector.simulate import default_simulation_config, validate_simulation_config
    from gnntrack.detector.toy import default_toy_config, validate_toy_config
    from gnntrack.errors import ConfigError

    if args.events < 1:
        raise ConfigError(f"--events must be >= 1 (got {args.events})")
    if args.toy:
        toy = default_toy_config()
        toy.n_planes, toy.n_tracks, toy.dims, toy.curved = args.toy_planes, args.toy_tracks, args.toy_dims, args.toy_curved
        if args.noise_fraction is not None:
            toy.noise_fraction = args.noise_fraction
        toy.lock()
        apply_overrides(toy, args.settings)
        validate_toy_config(toy)
        return None, toy
    config = default_simulation_config()
    config.pileup = args.pileup
    config.n_particles = args.n_particles
    if args.noise_fraction is not None:
        config.noise_fraction = args.noise_fraction
    config.lock()
    apply_overrides(config, args.settings)
    validate_simulation_config(config)
    return config, None


def run(args) -> int:
    from pathlib import Path

    from gnntrack.config import config_to_dict
    from gnntrack.detector.particles import read_particles_file
    from gnntrack.detector.simulate import simulate_events
    from gnntrack.io.atomic import check_directory_path, write_json_atomic

    check_directory_path(args.out, "--out")
    if args.detector == "luxe":
        return _run_luxe(args)
    config, toy = build_configs(args)
    particles = read_particles_file(args.from_particles) if args.from_particles and not toy else None
    paths = simulate_events(args.out, args.events, config, args.seed, particles=particles,
                            first_event_id=args.first_event_id, compress=args.compress,
                            progress=not args.no_progress, toy=toy)
    write_json_atomic(Path(args.out) / "simulation.json", {
        "seed": args.seed, "events": args.events, "first_event_id": args.first_event_id,
        "from_particles": args.from_particles, "toy": config_to_dict(toy) if toy else None,
        "simulation": config_to_dict(config) if config else None})
    print(f"wrote {args.events} event(s), {len(paths)} files to {args.out}")
    return 0


def _run_luxe(args) -> int:
    from pathlib import Path

    from gnntrack.config import config_to_dict
    from gnntrack.detector.luxe import simulate_luxe_events
    from gnntrack.io.atomic import write_json_atomic

    config = build_luxe_config(args)
    paths = simulate_luxe_events(args.out, args.events, config, args.seed, first_event_id=args.first_event_id,
                                 compress=args.compress, progress=not args.no_progress)
    write_json_atomic(Path(args.out) / "simulation.json", {
        "seed": args.seed, "events": args.events, "first_event_id": args.first_event_id,
        "detector": "luxe", "luxe": config_to_dict(config)})
    print(f"wrote {args.events} crossing(s), {len(paths)} files to {args.out}")
    return 0
