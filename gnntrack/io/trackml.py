"""Read, validate and write events in the TrackML CSV format.

File layout (as in the TrackML challenge data set): one event is a set of files sharing a prefix,
`<dir>/event<9 digits>-<part>.csv` or `.csv.gz`, with part in hits, truth, particles, cells.
Test sets hold hits (and cells) only; the simulation writes cells only when asked (`cells`).

Validation happens here, at the edge: every malformed input raises one `InputError` naming the
file and the column (missing or extra columns, non-numeric values, NaN/inf, hit positions far
outside any detector, non-integer ids, duplicate ids, truth rows that do not match the hits, truth
particles missing from the particle table, empty or unreadable files). Code downstream may
assume a valid, typed `Event`:

- columns in TrackML file order, with the dtypes of `gnntrack.io.event` (float32 / int32 / int64);
- a fresh RangeIndex;
- `truth` rows in the same order as `hits` rows (reordered on reading when the file differs).

All checks are vectorised (pandas hashing / numpy sorting); a 100k-hit event validates in
milliseconds, parsing dominates.
"""

from __future__ import annotations

import gzip
import os
import re
import zlib
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from gnntrack.errors import InputError
from gnntrack.io.atomic import atomic_paths, naming_file
from gnntrack.io.event import PARTICLES_OPTIONAL, PARTS, SCHEMAS, Event, event_prefix_name

__all__ = [
    "DEFAULT_PARTS", "read_event", "read_events", "read_table", "list_event_prefixes",
    "find_part_file", "validate_table", "validate_event", "write_event", "event_id_from_prefix",
    "read_csv_file",
]

DEFAULT_PARTS: tuple[str, ...] = ("hits", "truth", "particles", "cells")
_SUFFIXES = (".csv", ".csv.gz")
# `event<digits>-<part>.csv[.gz]`; the part is matched loosely (like the trackml-library does),
# unknown parts are ignored when reading an event.
_FILE_RE = re.compile(r"^(event\d+)-([A-Za-z]+)\.csv(\.gz)?$")
_PREFIX_RE = re.compile(r"event(\d+)$")
_GZIP_LEVEL = 1  # much faster than the default 6, for files only slightly larger
# Hit positions (mm) beyond this belong to no detector (TrackML's fits in |z| < 3 m, r < 1.1 m;
# the largest collider detectors are ~46 m long): a unit mistake or a 1e30 "missing" marker. Such
# hits would reach no graph edge and overflow float32 feature arithmetic.
MAX_ABS_POSITION_MM = 1e5
_POSITION_COLUMNS = {"hits": ("x", "y", "z"), "truth": ("tx", "ty", "tz")}


# --------------------------------------------------------------------------------------------
# Names and paths
# --------------------------------------------------------------------------------------------


def event_id_from_prefix(prefix: str | os.PathLike) -> int:
    """The integer in a prefix `.../event000001000` (1000). InputError if the name does not match."""
    m = _PREFIX_RE.search(Path(prefix).name)
    if m is None:
        raise InputError(f"{prefix}: event prefix must end in 'event<digits>' (e.g. event000001000)")
    return int(m.group(1))


def _normalise_prefix(prefix: str | os.PathLike) -> Path:
    """Accepts `dir/event000001000` or one of its part files (`dir/event000001000-hits.csv.gz`)."""
    path = Path(prefix)
    m = _FILE_RE.match(path.name)
    if m is not None:
        path = path.with_name(m.group(1))
    return path


def find_part_file(prefix: str | os.PathLike, part: str) -> Path | None:
    """The file `<prefix>-<part>.csv` or `.csv.gz`, or None if neither exists.

    Both existing is an error (which one is the event?); the trackml-library refuses it too.
    """
    prefix = Path(prefix)
    found = [p for p in (prefix.with_name(f"{prefix.name}-{part}{s}") for s in _SUFFIXES) if p.is_file()]
    if len(found) > 1:
        raise InputError(f"{found[0]} and {found[1]} both exist: keep one of them")
    return found[0] if found else None


def list_event_prefixes(directory: str | os.PathLike) -> list[Path]:
    """Sorted unique event prefixes (`directory/event<digits>`) of the TrackML files in `directory`.

    A hits file (csv or csv.gz) makes an event: every event has one, and `write_event` puts it
    in place after the other parts, so parts left without hits by an interrupted write are not
    listed. Hidden files (temporary files of atomic writes) are ignored.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(f"{directory}: not a directory")
    matches = (_FILE_RE.match(name) for name in os.listdir(directory))
    names = {m.group(1) for m in matches if m is not None and m.group(2) == "hits"}
    # numeric order (equal to name order for the usual 9-digit ids)
    return [directory / n for n in sorted(names, key=lambda n: (int(n[5:]), n))]


# --------------------------------------------------------------------------------------------
# Table validation (shared by files and in-memory events)
# --------------------------------------------------------------------------------------------


def _where(source_is_file: bool, row: int) -> str:
    """Human position of data row `row` (0-based): a file line (header is line 1) or a row."""
    return f"line {row + 2}" if source_is_file else f"row {row}"


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _check_columns(df: pd.DataFrame, part: str, source: str) -> list[str]:
    """Returns the schema columns present in `df`, in file order; raises on missing/extra ones."""
    schema = SCHEMAS[part]
    optional = PARTICLES_OPTIONAL if part == "particles" else ()
    cols = [str(c) for c in df.columns]
    seen: set[str] = set()
    for c in cols:
        # pandas renames a repeated header `x` to `x.1`; report it as the duplicate it is.
        base = re.sub(r"\.\d+$", "", c)
        if c in seen or (base != c and base in cols):
            raise InputError(f"{source}: column '{base}' appears more than once")
        seen.add(c)
    extra = [c for c in cols if c not in schema]
    if extra:
        # Extra columns are an error, not ignored: a misspelt or shifted header would otherwise
        # pass silently, and the trackml-library reads them into the tables too.
        hint = ("; a leading unnamed column is usually a pandas index (write with index=False)"
                if any(c.startswith("Unnamed: ") for c in extra) else "")
        raise InputError(
            f"{source}: unexpected column{'s' if len(extra) > 1 else ''} "
            f"{', '.join(repr(c) for c in extra)} (TrackML {part} columns: {', '.join(schema)}){hint}")
    missing = [c for c in schema if c not in seen and c not in optional]
    if missing:
        raise InputError(
            f"{source}: missing column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(repr(c) for c in missing)} (TrackML {part} columns: {', '.join(schema)})")
    return [c for c in schema if c in seen]


def _typed_column(values: pd.Series, dtype: type, col: str, source: str, is_file: bool) -> np.ndarray:
    """Checks one column (numeric, finite, integral for ints, in range) and casts it to `dtype`."""
    where = lambda row: _where(is_file, row)  # noqa: E731
    if isinstance(values.dtype, pd.api.extensions.ExtensionDtype) and pd.api.types.is_numeric_dtype(values.dtype) \
            and not pd.api.types.is_bool_dtype(values.dtype):
        # nullable pandas dtypes (Int64, Float32, ...): NA is a missing value, the rest is numpy
        if values.isna().any():
            row = _first(values.isna().to_numpy())
            raise InputError(f"{source}: column '{col}': missing value (empty or NaN) at {where(row)}")
        values = values.astype(values.dtype.numpy_dtype)
    if not pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
        coerced = pd.to_numeric(values, errors="coerce")
        bad = (coerced.isna() & values.notna()).to_numpy()
        if bad.any():
            row = _first(bad)
            raise InputError(f"{source}: column '{col}': non-numeric value {values.iloc[row]!r} at {where(row)}")
        if values.isna().any():
            row = _first(values.isna().to_numpy())
            raise InputError(f"{source}: column '{col}': missing value (empty or NaN) at {where(row)}")
        raise InputError(f"{source}: column '{col}': expected numbers, got dtype {values.dtype}")
    arr = values.to_numpy()
    if arr.dtype.kind == "f":
        nan = np.isnan(arr)
        if nan.any():
            row = _first(nan)
            raise InputError(f"{source}: column '{col}': missing value (empty or NaN) at {where(row)}")
        inf = np.isinf(arr)
        if inf.any():
            row = _first(inf)
            raise InputError(f"{source}: column '{col}': infinite value at {where(row)}")
    if np.issubdtype(dtype, np.integer):
        if arr.dtype.kind not in "iu":
            nonint = arr != np.round(arr)
            row = _first(nonint) if nonint.any() else 0
            raise InputError(f"{source}: column '{col}': expected integers, found {arr[row].item()!r} at {where(row)}")
        info = np.iinfo(dtype)
        if len(arr) and (arr.min() < info.min or arr.max() > info.max):
            row = _first((arr < info.min) | (arr > info.max))
            raise InputError(f"{source}: column '{col}': value {arr[row]} at {where(row)} is out of "
                             f"range for {np.dtype(dtype).name}")
        return arr.astype(dtype, copy=False)
    # float32 column: values beyond float32 would silently become inf
    with np.errstate(over="ignore"):
        out = arr.astype(dtype, copy=False)
    if out.dtype.kind == "f" and arr.dtype != out.dtype:
        overflow = np.isinf(out)
        if overflow.any():
            row = _first(overflow)
            raise InputError(f"{source}: column '{col}': value {arr[row]} at {where(row)} overflows float32")
    return out


def _check_unique(ids: np.ndarray, col: str, source: str, is_file: bool) -> None:
    dup = pd.Series(ids).duplicated().to_numpy()
    if dup.any():
        row = _first(dup)
        raise InputError(f"{source}: column '{col}': duplicate id {ids[row]} at {_where(is_file, row)}")


def _check_min(arr: np.ndarray, minimum: float, col: str, source: str, is_file: bool, what: str) -> None:
    bad = arr < minimum
    if bad.any():
        row = _first(bad)
        raise InputError(f"{source}: column '{col}': {what}, found {arr[row]} at {_where(is_file, row)}")


def _check_positions(arr: np.ndarray, col: str, source: str, is_file: bool) -> None:
    bad = np.abs(arr) > MAX_ABS_POSITION_MM
    if bad.any():
        row = _first(bad)
        raise InputError(f"{source}: column '{col}': position {arr[row]:.7g} mm at {_where(is_file, row)} is "
                         f"outside +-{MAX_ABS_POSITION_MM:g} mm, far beyond any detector (positions are in mm)")


def validate_table(df: pd.DataFrame, part: str, source: str, *, is_file: bool = False) -> pd.DataFrame:
    """Checks one TrackML table and returns it typed (schema dtypes, file column order, RangeIndex).

    Args:
      df: the raw table (any numeric dtypes).
      part: one of hits, truth, particles, cells.
      source: what to name in errors (a file path, or e.g. "event 1000 truth").
      is_file: positions are reported as file lines (header = line 1) instead of 0-based rows.
    Raises:
      InputError naming `source` and the column for any malformed content (see module doc).
    """
    if part not in SCHEMAS:
        raise InputError(f"{source}: unknown TrackML part {part!r} (expected one of {', '.join(PARTS)})")
    if not isinstance(df, pd.DataFrame):
        raise InputError(f"{source}: expected a pandas DataFrame, got {type(df).__name__}")
    cols = _check_columns(df, part, source)
    if len(df) == 0:
        raise InputError(f"{source}: no data rows (only a header)")
    schema = SCHEMAS[part]
    out = pd.DataFrame({c: _typed_column(df[c], schema[c], c, source, is_file) for c in cols})
    for col in _POSITION_COLUMNS.get(part, ()):
        _check_positions(out[col].to_numpy(), col, source, is_file)
    if part in ("hits", "truth"):
        _check_min(out["hit_id"].to_numpy(), 0, "hit_id", source, is_file, "hit ids must be >= 0")
        _check_unique(out["hit_id"].to_numpy(), "hit_id", source, is_file)
    if part == "truth":
        _check_min(out["particle_id"].to_numpy(), 0, "particle_id", source, is_file,
                   "particle ids must be >= 0 (0 = noise)")
        _check_min(out["weight"].to_numpy(), 0, "weight", source, is_file, "weights must be >= 0")
    if part == "particles":
        pid = out["particle_id"].to_numpy()
        _check_min(pid, 1, "particle_id", source, is_file, "particle ids must be >= 1 (0 means noise)")
        _check_unique(pid, "particle_id", source, is_file)
        _check_min(out["nhits"].to_numpy(), 0, "nhits", source, is_file, "hit counts must be >= 0")
    if part == "cells":
        _check_min(out["hit_id"].to_numpy(), 0, "hit_id", source, is_file, "hit ids must be >= 0")
    return out


def _missing_example(ids: np.ndarray, reference: np.ndarray) -> tuple[int, int | None]:
    """(number of `ids` not in `reference`, first such id or None); vectorised via np.isin."""
    missing = ~np.isin(ids, reference)
    n = int(missing.sum())
    return n, (int(ids[_first(missing)]) if n else None)


def _check_consistency(event: Event, sources: dict[str, str]) -> Event:
    """Cross-table checks; returns the event with truth rows put into hit order."""
    hit_ids = event.hits["hit_id"].to_numpy()
    truth = event.truth
    if truth is not None:
        t_ids = truth["hit_id"].to_numpy()
        if not np.array_equal(t_ids, hit_ids):
            n_extra, ex_extra = _missing_example(t_ids, hit_ids)
            n_lost, ex_lost = _missing_example(hit_ids, t_ids)
            if n_extra or n_lost:
                parts = []
                if n_extra:
                    parts.append(f"{n_extra} truth hit id(s) not in the hits (e.g. {ex_extra})")
                if n_lost:
                    parts.append(f"{n_lost} hit id(s) without a truth row (e.g. {ex_lost})")
                raise InputError(f"{sources['truth']}: column 'hit_id' does not match {sources['hits']}: "
                                 + "; ".join(parts))
            # same id set, other order: put truth into hit order (both are unique)
            order = np.argsort(t_ids, kind="stable")
            pos = order[np.searchsorted(t_ids, hit_ids, sorter=order)]
            truth = truth.iloc[pos].reset_index(drop=True)
        if event.particles is not None:
            pids = truth["particle_id"].to_numpy()
            pids = np.unique(pids[pids != 0])
            n, ex = _missing_example(pids, event.particles["particle_id"].to_numpy())
            if n:
                raise InputError(f"{sources['truth']}: column 'particle_id': {n} particle id(s) not in "
                                 f"{sources['particles']} (e.g. {ex}); only 0 (noise) may be absent")
    if event.cells is not None:
        n, ex = _missing_example(np.unique(event.cells["hit_id"].to_numpy()), hit_ids)
        if n:
            raise InputError(f"{sources['cells']}: column 'hit_id': {n} hit id(s) not in "
                             f"{sources['hits']} (e.g. {ex})")
    return Event(event_id=event.event_id, hits=event.hits, truth=truth, particles=event.particles,
                 cells=event.cells)


def validate_event(event: Event, source: str | None = None) -> Event:
    """Checks an in-memory event (each table, then cross-table consistency).

    Returns a typed copy (schema dtypes, truth in hit order); the input is not modified.
    `source` names the event in errors (default `event<9 digits>`).
    """
    if not isinstance(event, Event):
        raise InputError(f"{source or 'event'}: expected gnntrack.io.event.Event, got {type(event).__name__}")
    source = source or event.prefix_name
    if event.hits is None:
        raise InputError(f"{source}: the event has no hits table")
    sources = {p: f"{source} {p}" for p in PARTS}
    tables = {p: getattr(event, p) for p in PARTS}
    typed = {p: (None if t is None else validate_table(t, p, sources[p])) for p, t in tables.items()}
    return _check_consistency(Event(event_id=int(event.event_id), **typed), sources)


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def read_csv_file(path: str | os.PathLike) -> pd.DataFrame:
    """pandas.read_csv (csv or csv.gz) with every I/O or format failure (missing, empty, truncated
    or corrupt gzip, binary, malformed) turned into one InputError naming the file."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise InputError(f"{path}: file is empty (0 bytes)")
        # Types are inferred, then checked column by column, so errors can name the column
        # and the line (a `dtype=` argument would fail with pandas' own, vaguer message).
        return pd.read_csv(path, header=0, index_col=False, compression="infer")
    except InputError:
        raise
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: file is empty (no header line)") from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise InputError(f"{path}: unreadable gzip data ({exc or type(exc).__name__})") from None
    except UnicodeDecodeError as exc:
        with open(path, "rb") as f:
            gzipped = f.read(2) == b"\x1f\x8b"
        hint = "; it is gzip data: name it .csv.gz" if gzipped else ""
        raise InputError(f"{path}: not a text CSV file ({exc.reason} at byte {exc.start}){hint}") from None
    except pd.errors.ParserError as exc:
        raise InputError(f"{path}: malformed CSV ({str(exc).strip()})") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc})") from None


def read_table(path: str | os.PathLike, part: str) -> pd.DataFrame:
    """Reads and validates one TrackML table file (`.csv` or `.csv.gz`).

    Returns the typed table (see `validate_table`); raises InputError naming the file and column.
    Cross-table checks (truth vs hits, ...) need the whole event: see `read_event`.
    """
    path = Path(path)
    if part not in SCHEMAS:
        raise InputError(f"{path}: unknown TrackML part {part!r} (expected one of {', '.join(PARTS)})")
    return validate_table(read_csv_file(path), part, str(path), is_file=True)


def _check_parts(parts: Iterable[str], what: str) -> tuple[str, ...]:
    parts = (parts,) if isinstance(parts, str) else tuple(parts)
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        raise InputError(f"{what}: unknown part(s) {', '.join(map(repr, unknown))} "
                         f"(expected some of {', '.join(PARTS)})")
    return parts


def read_event(prefix: str | os.PathLike, parts: Sequence[str] = DEFAULT_PARTS, *,
               required: Sequence[str] = ("hits",)) -> Event:
    """Reads one event `<prefix>-<part>.csv[.gz]` and checks it.

    Args:
      prefix: e.g. `data/event000001000` (a part file name such as `...-hits.csv.gz` is accepted too).
      parts: which tables to read; hits are always read (every check needs them). Parts not listed
        are None in the returned Event.
      required: parts that must exist (default hits only); a listed part whose file is absent is
        None when not required (test sets have no truth; cells are usually absent).
    Returns:
      a typed, validated `Event` (truth rows in hit order).
    Raises:
      InputError naming the file (and column) for missing required files and malformed content.
    """
    prefix = _normalise_prefix(prefix)
    parts = _check_parts(parts, str(prefix))
    required = _check_parts(required, str(prefix))
    event_id = event_id_from_prefix(prefix)
    wanted = ["hits"] + [p for p in PARTS if p in parts and p != "hits"]
    tables: dict[str, pd.DataFrame | None] = {p: None for p in PARTS}
    sources: dict[str, str] = {}
    for part in wanted:
        path = find_part_file(prefix, part)
        if path is None:
            if part == "hits" or part in required:
                raise InputError(f"{prefix}-{part}.csv: file not found (nor {prefix.name}-{part}.csv.gz)")
            continue
        tables[part] = read_table(path, part)
        sources[part] = str(path)
    return _check_consistency(Event(event_id=event_id, **tables), sources)


def read_events(directory: str | os.PathLike, parts: Sequence[str] = DEFAULT_PARTS, *,
                limit: int | None = None, required: Sequence[str] = ("hits",),
                progress: bool = False) -> Iterator[Event]:
    """Yields the events of `directory` in prefix order (at most `limit`), read by `read_event`.

    InputError if the directory holds no event files.
    """
    prefixes = list_event_prefixes(directory)
    if not prefixes:
        raise InputError(f"{directory}: no TrackML event files (event<digits>-hits.csv[.gz])")
    if limit is not None:
        prefixes = prefixes[: max(int(limit), 0)]
    if progress:
        from tqdm import tqdm

        prefixes = tqdm(prefixes, desc="reading events", unit="event")
    for prefix in prefixes:
        yield read_event(prefix, parts, required=required)


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def _csv_bytes(df: pd.DataFrame) -> bytes:
    """Deterministic CSV text of a typed table.

    Integers are written as integers; float32 columns use pandas' default float formatting, which
    for float32 is the shortest decimal that parses back to the same float32 (e.g. `0.1`, not
    `0.100000001`), so a write -> read round trip is exact and the text stays compact.
    """
    return df.to_csv(index=False, lineterminator="\n").encode("ascii")


def write_event(event: Event, out_dir: str | os.PathLike, *, compress: bool = False,
                compresslevel: int = _GZIP_LEVEL, validate: bool = True) -> list[Path]:
    """Writes `event` as TrackML files `out_dir/event<9 digits>-<part>.csv[.gz]` (atomically).

    Writes hits and each present table of truth, particles, cells (particles keep or lack
    `particle_type` as given). Same data -> byte-identical files (fixed formatting, gzip header
    without time stamp or name). The event replaces any older version of itself in `out_dir`:
    files of this prefix with the other compression, or of parts this event does not have, are
    removed, so every reader finds exactly one consistent file per part.

    A reader never sees half an event: every part is first written to a temporary file; only
    when all are written is the old version's hits file removed, and the hits file (which makes
    an event, see `list_event_prefixes`) is renamed into place after every other part. A failed
    write (e.g. a full disk) leaves the older version, or nothing, and names the file.

    Args:
      event: the event; validated first (InputError on bad content) unless `validate=False`.
      out_dir: created if needed.
      compress: write `.csv.gz` instead of `.csv`.
      compresslevel: gzip level 1-9 (1 default: much faster than 6, slightly larger files).
    Returns:
      the written paths, in the order hits, truth, particles, cells.

    `validate=False` skips the checks and the typing: only for events that come out of
    `validate_event` / `read_event` already (float64 columns would be written as float64 text).
    """
    if validate:
        event = validate_event(event)
    out_dir = Path(out_dir)
    name = event_prefix_name(event.event_id)
    suffix, stale_suffix = (".csv.gz", ".csv") if compress else (".csv", ".csv.gz")
    present = [p for p in PARTS if getattr(event, p) is not None]
    order = sorted(present, key=lambda p: p == "hits")  # hits last: they make the event visible
    paths = {p: out_dir / f"{name}-{p}{suffix}" for p in present}
    # The older version's hits go first (that hides it), then its parts in the other format and
    # those this event lacks.
    old_files = [out_dir / f"{name}-hits{s}" for s in _SUFFIXES]
    old_files += [out_dir / f"{name}-{p}{stale_suffix}" for p in PARTS if p != "hits"]
    old_files += [out_dir / f"{name}-{p}{suffix}" for p in PARTS if p not in paths]
    with atomic_paths([paths[p] for p in order]) as tmps:
        for part, tmp in zip(order, tmps):
            data = _csv_bytes(getattr(event, part))
            if compress:
                data = gzip.compress(data, compresslevel=compresslevel, mtime=0)
            with naming_file(paths[part]):
                tmp.write_bytes(data)
        for old in old_files:
            old.unlink(missing_ok=True)
    return [paths[p] for p in present]
