"""`gnntrack scale --config experiments/scaling/<study>.py --workdir W [--config.study.x=v ...]`.

Runs (or resumes: finished points / device counts are skipped) a scaling study, one process per
directory (a second `gnntrack scale` on W stops at once, naming the first):
  study.kind = 'batch_size': steps-to-target vs batch (gnntrack.studies.batch_size)
  study.kind = 'data_size':  a metric vs training events, train/val gap (gnntrack.studies.data_size)
  study.kind = 'devices':    throughput vs devices (gnntrack.studies.devices)
and writes results.csv, results.md, results.json and PNG plots into W.
"""

from __future__ import annotations

import argparse
import os

HELP = ("run a scaling study (batch size: steps-to-target; data size: metric vs training events; devices: "
        "throughput) into a directory (resumable)")
KINDS = ("batch_size", "data_size", "devices")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from gnntrack.cli import add_config_arguments

    add_config_arguments(parser)
    parser.epilog = ("any config key can be overridden, e.g. --config.study.batch_sizes='(2, 8)' "
                     "--config.study.trials=2")
    parser.add_argument("--workdir", required=True, help="study directory (results, plots, run directories)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def force_host_devices(n_devices: int) -> None:
    """Before JAX starts: expose n host CPU devices (if XLA_FLAGS does not already choose a
    count) and give the CPU client enough threads (PJRT_NPROC) that the collectives of n devices
    cannot starve each other. Harmless on GPU/TPU hosts (only the host platform is affected)."""
    flags = os.environ.get("XLA_FLAGS", "")
    if n_devices > 1 and "xla_force_host_platform_device_count" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={int(n_devices)}".strip()
    os.environ.setdefault("PJRT_NPROC", str(max(2 * int(n_devices), 8, os.cpu_count() or 1)))


def run(args: argparse.Namespace) -> int:
    from gnntrack.config import load_config
    from gnntrack.errors import ConfigError
    from gnntrack.io.atomic import check_directory_path
    from gnntrack.io.lock import hold_directory

    check_directory_path(args.workdir, "--workdir")
    config = load_config(args.config, args.overrides)
    kind = config.get("study", {}).get("kind") if "study" in config else None
    if kind not in KINDS:
        raise ConfigError(f"config key 'study.kind' must be one of {', '.join(KINDS)} (got {kind!r}) in {args.config}")
    progress = not args.no_progress
    # one study process per directory: two would run the same points and repeats side by side
    # (the repeats' run directories would refuse the second one midway); its sweeps' workers
    # and the runs inside lock their own directories
    with hold_directory(args.workdir):
        if kind == "batch_size":
            force_host_devices(int(config.parallel.n_devices or 1))
            from gnntrack.studies.batch_size import run_batch_size_study

            out = run_batch_size_study(config, args.workdir, progress=progress)
            print(f"batch-size study: {len(out['summary'])} points in {out['elapsed_s']:.0f} s -> "
                  f"{args.workdir}/results.md")
        elif kind == "data_size":
            force_host_devices(int(config.parallel.n_devices or 1))
            from gnntrack.studies.data_size import run_data_size_study

            out = run_data_size_study(config, args.workdir, progress=progress)
            print(f"data-size study: {len(out['summary'])} sizes in {out['elapsed_s']:.0f} s -> "
                  f"{args.workdir}/results.md")
        else:
            from gnntrack.studies.devices import run_device_study

            out = run_device_study(config, args.workdir, progress=progress)
            print(f"device study: {len(out['results'])} measurements in {out['elapsed_s']:.0f} s -> "
                  f"{args.workdir}/results.md")
    for note in out["notes"]:
        print(f"  - {note}")
    return 0
