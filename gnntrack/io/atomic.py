"""Atomic file writes: write to a temporary file in the same directory, then rename.

A crash mid-write leaves either the old file or the new one, never a truncated file; a failed
write (e.g. a full disk) removes its temporary file and names the file it was writing.
`atomic_paths` does the same for a group of files that belong together (an event's parts), and
`check_directory_path` checks an output directory argument before any work is done.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator, Sequence

from gnntrack.errors import InputError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yields a temporary path next to `path`; renames it onto `path` if the block succeeds.

    The temporary name keeps the final suffixes (e.g. `.csv.gz`) so writers that infer the
    format from the name (pandas compression, matplotlib) behave as for the final path. An
    OSError that names no file (a failed `write()` names none) is given `path` as its file name.
    """
    with naming_file(path), atomic_paths([path]) as (tmp,):
        yield tmp


@contextlib.contextmanager
def naming_file(path: str | os.PathLike) -> Iterator[None]:
    """Gives an OSError raised in the block `path` as its file name when it has none (a failed
    `write()` names none), so that the error can say which file could not be written."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None:
            exc.filename = os.fspath(path)
        raise


@contextlib.contextmanager
def atomic_paths(paths: Sequence[str | os.PathLike]) -> Iterator[list[Path]]:
    """Yields one temporary path next to each of `paths`; renames them onto `paths`, in the order
    given, once the whole block has succeeded (on failure every temporary is removed).

    Put the file that readers look for last: it appears only when the others are in place.
    Temporary names start with a dot, so directory listings that skip hidden files ignore them.
    """
    paths = [Path(p) for p in paths]
    mode = 0o666 & ~_umask()  # mkstemp creates 0600 files; the final files follow the umask
    tmps: list[Path] = []
    try:
        for path in paths:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix="".join(path.suffixes) or ".tmp",
                                       dir=path.parent)
            os.close(fd)
            tmps.append(Path(tmp))
            os.chmod(tmp, mode)
        yield list(tmps)
        for tmp, path in zip(tmps, paths):
            os.replace(tmp, path)
    finally:
        for tmp in tmps:
            tmp.unlink(missing_ok=True)


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def check_directory_path(path: str | os.PathLike, what: str) -> Path:
    """Returns `path` if it is a directory or can be created as one; else raises InputError
    naming `what` (e.g. "--out") and the file in the way (the path itself or a parent)."""
    path = Path(path)
    for existing in (path, *path.parents):
        if existing.exists():  # the nearest existing path decides (symbolic links followed)
            if existing.is_dir():
                return path
            where = "exists and is not a directory" if existing == path else f"{existing} is not a directory"
            raise InputError(f"{what} {path}: {where}; choose a directory (new or existing) instead")
    return path


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Writes `text` to `path` atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: str | os.PathLike, obj: Any, *, indent: int = 2) -> None:
    """Writes `obj` as JSON to `path` atomically."""
    write_text_atomic(path, json.dumps(obj, indent=indent, sort_keys=False, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    """JSON encoder for numpy scalars/arrays (results are often numpy)."""
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
