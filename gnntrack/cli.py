"""`gnntrack <verb> ...`: a thin dispatcher.

Each verb lives in `gnntrack/commands/<verb>.py` with three names: `HELP` (one line),
`add_arguments(parser)` and `run(args) -> int | None`. Command modules import their heavy
dependencies (jax, pandas, ...) inside `run`, so `gnntrack --help` stays instant.
Errors derived from `GnnTrackError` are printed as one line and exit with code 2; so are OSErrors
that the environment causes (a full disk, a read-only or unwritable location, a file where a
directory belongs), also when they arrive wrapped (exception chains and groups, worker pools).
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
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
    "reconstruct": "reconstruct",
    "bench": "bench",
    "sweep": "sweep",
    "scale": "scale",
    "jets": "jets",
    "pflow": "pflow",
}


_RUN_AGAIN = "free some space (or choose another location) and run the command again"
_PERMISSIONS = "check the permissions or choose another location"
_IN_THE_WAY = "a file or directory is in the way: choose another path or move it"
# errno -> what to do. These come from the machine, not from a bug, so they get one line like a
# GnnTrackError; any other OSError keeps its traceback.
_ENVIRONMENT_ERRNOS: dict[int, str] = {
    errno.ENOSPC: _RUN_AGAIN, errno.EDQUOT: _RUN_AGAIN,
    errno.EROFS: "choose a writable location", errno.EACCES: _PERMISSIONS, errno.EPERM: _PERMISSIONS,
    errno.ENOTDIR: _IN_THE_WAY, errno.EISDIR: _IN_THE_WAY, errno.EEXIST: _IN_THE_WAY,
}


def environment_error(exc: BaseException) -> OSError | None:
    """The first OSError with an errno of `_ENVIRONMENT_ERRNOS` in `exc`, the exceptions it was
    raised from or during (`__cause__`, `__context__`) and the members of exception groups;
    None if there is none. Worker pools (concurrent.futures, multiprocessing) re-raise a
    worker's exception itself, with the worker's traceback chained to it."""
    pending, seen = [exc], set()
    while pending:
        current = pending.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _ENVIRONMENT_ERRNOS:
            return current
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        pending.extend((current.__cause__, current.__context__))
    return None


def environment_message(exc: OSError) -> str:
    """`FILE: reason; what to do` for an OSError of `_ENVIRONMENT_ERRNOS`."""
    reason = exc.strerror or os.strerror(exc.errno)
    reason = reason[:1].lower() + reason[1:]
    where = f"{exc.filename}: {reason}" if exc.filename is not None else f"{reason} (the file is not named)"
    return f"{where}; {_ENVIRONMENT_ERRNOS[exc.errno]}"


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
    buffers (gnntrack/runtime.py: glibc reads that setting only at process start), then `main`.
    After Ctrl-C it leaves without the interpreter's teardown (runtime.exit_after_interrupt)."""
    from gnntrack.runtime import INTERRUPTED, exit_after_interrupt, reexec_with_hugepages

    reexec_with_hugepages()
    code = main()
    if code == INTERRUPTED:
        exit_after_interrupt(code)
    sys.exit(code)


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
    except Exception as exc:
        cause = environment_error(exc)
        if cause is None:
            raise
        print(f"gnntrack {args.verb}: error: {environment_message(cause)}", file=sys.stderr)
        return 2
    return int(code or 0)


def add_config_arguments(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    """Adds `--config FILE` and accepts any number of `--config.a.b=value` overrides."""
    parser.add_argument("--config", required=required, help="experiment file (get_config) or run config.json")
    parser.set_defaults(accepts_config_overrides=True, overrides=[])


if __name__ == "__main__":
    entry_point()
