"""`gnntrack <verb> ...`: a thin dispatcher.

Each verb lives in `gnntrack/commands/<verb>.py` with three names: `HELP` (one line),
`add_arguments(parser)` and `run(args) -> int | None`. Command modules import their heavy
dependencies (jax, pandas, ...) inside `run`, so `gnntrack --help` stays instant.
Errors derived from `GnnTrackError` are printed as one line and exit with code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from gnntrack.errors import GnnTrackError

# verb -> module under gnntrack.commands
VERBS: dict[str, str] = {
    "quickstart": "quickstart",
    "simulate": "simulate",
    "inspect": "inspect_event",
    "build-graphs": "build_graphs",
    "train": "train",
    "evaluate": "evaluate",
    "score": "score",
    "bench": "bench",
    "sweep": "sweep",
    "scale": "scale",
}


def _load(verb: str):
    return importlib.import_module(f"gnntrack.commands.{VERBS[verb]}")


def build_parser(available: dict[str, object] | None = None) -> argparse.ArgumentParser:
    """Builds the top-level parser with one sub-parser per available verb."""
    from gnntrack import __version__

    parser = argparse.ArgumentParser(prog="gnntrack", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"gnntrack {__version__}")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    sub.required = True
    for verb in VERBS:
        try:
            module = _load(verb) if available is None else available[verb]
        except (ImportError, KeyError):
            continue  # a verb whose module is not there yet is simply not offered
        p = sub.add_parser(verb, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def entry_point() -> None:
    """The `gnntrack` command: first re-executes itself once with huge pages for XLA:CPU's host
    buffers (gnntrack/runtime.py: glibc reads that setting only at process start), then `main`."""
    from gnntrack.runtime import reexec_with_hugepages

    reexec_with_hugepages()
    sys.exit(main())


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # Dotted config overrides (--config.a.b=v) are collected for verbs that accept them.
    if extra:
        if getattr(args, "accepts_config_overrides", False):
            bad = [e for e in extra if not e.startswith("--config.")]
            if bad:
                parser.error(f"unrecognized arguments: {' '.join(bad)}")
            args.overrides = list(getattr(args, "overrides", []) or []) + extra
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        code = args._module.run(args)
    except GnnTrackError as exc:
        print(f"gnntrack {args.verb}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gnntrack {args.verb}: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


def add_config_arguments(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    """Adds `--config FILE` and accepts any number of `--config.a.b=value` overrides."""
    parser.add_argument("--config", required=required, help="experiment file (get_config) or run config.json")
    parser.set_defaults(accepts_config_overrides=True, overrides=[])


if __name__ == "__main__":
    entry_point()
