"""Malformed TrackML input: each case raises one InputError naming the file and the column."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gnntrack.errors import InputError
from gnntrack.io.trackml import read_event, read_table, validate_event, write_event


def _edit_csv(path: Path, fn) -> None:
    """Rewrites a CSV through a function of its lines (header = lines[0])."""
    lines = path.read_text().splitlines()
    path.write_text("\n".join(fn(lines)) + "\n")


def _set_field(row: int, col: str, text: str):
    """Edit: data row `row` (0-based), column `col` set to raw `text`."""
    def fn(lines):
        header = lines[0].split(",")
        fields = lines[row + 1].split(",")
        fields[header.index(col)] = text
        lines[row + 1] = ",".join(fields)
        return lines
    return fn


def _drop_column(col: str):
    def fn(lines):
        i = lines[0].split(",").index(col)
        return [",".join(f for j, f in enumerate(line.split(",")) if j != i) for line in lines]
    return fn


def _add_column(name: str):
    return lambda lines: [lines[0] + f",{name}"] + [line + ",0" for line in lines[1:]]


# (case id, part file edited, edit, expected column or None, message regex)
CASES = [
    ("missing column", "hits", _drop_column("z"), "z", r"missing column 'z'"),
    ("extra column", "truth", _add_column("charge"), "charge", r"unexpected column 'charge'"),
    ("repeated column", "hits", lambda l: [l[0].replace("module_id", "x")] + l[1:], "x",
     r"column 'x' appears more than once"),
    ("non-numeric", "hits", _set_field(1, "x", "abc"), "x", r"non-numeric value 'abc' at line 3"),
    ("non-numeric int", "hits", _set_field(0, "layer_id", "L2"), "layer_id", r"non-numeric value 'L2' at line 2"),
    ("empty field", "truth", _set_field(4, "ty", ""), "ty", r"missing value .* at line 6"),
    ("nan", "particles", _set_field(0, "pz", "nan"), "pz", r"missing value .* at line 2"),
    ("inf", "hits", _set_field(2, "z", "inf"), "z", r"infinite value at line 4"),
    ("-inf", "truth", _set_field(2, "tpx", "-inf"), "tpx", r"infinite value at line 4"),
    ("float in int column", "hits", _set_field(3, "volume_id", "8.5"), "volume_id",
     r"expected integers, found 8\.5 at line 5"),
    ("int32 overflow", "hits", _set_field(3, "module_id", "3000000000"), "module_id", r"out of range for int32"),
    ("float32 overflow", "hits", _set_field(3, "y", "1e39"), "y", r"overflows float32"),
    # finite in float32, but centuries of detectors away: such a hit used to give an event with
    # no graph edge that was averaged into the metrics without a word
    ("absurd position", "hits", _set_field(4, "z", "1e30"), "z",
     r"position 1e\+30 mm at line 6 is outside \+-100000 mm"),
    ("absurd truth position", "truth", _set_field(0, "tx", "-2.5e6"), "tx", r"position -2500000 mm at line 2"),
    ("duplicate hit id", "hits", _set_field(5, "hit_id", "2"), "hit_id", r"duplicate id 2 at line 7"),
    ("duplicate truth hit id", "truth", _set_field(5, "hit_id", "2"), "hit_id", r"duplicate id 2 at line 7"),
    ("negative hit id", "hits", _set_field(0, "hit_id", "-1"), "hit_id", r"hit ids must be >= 0"),
    ("truth hit not in hits", "truth", _set_field(7, "hit_id", "99"), "hit_id",
     r"does not match .*hits\.csv: 1 truth hit id\(s\) not in the hits \(e\.g\. 99\); "
     r"1 hit id\(s\) without a truth row \(e\.g\. 8\)"),
    ("hit without truth row", "truth", lambda l: l[:-1], "hit_id", r"1 hit id\(s\) without a truth row \(e\.g\. 8\)"),
    ("truth particle not in particles", "truth", _set_field(3, "particle_id", "77"), "particle_id",
     r"1 particle id\(s\) not in .*particles\.csv \(e\.g\. 77\)"),
    ("negative weight", "truth", _set_field(0, "weight", "-0.5"), "weight", r"weights must be >= 0"),
    ("duplicate particle", "particles", _set_field(1, "particle_id", "11"), "particle_id", r"duplicate id 11"),
    ("particle id 0", "particles", _set_field(2, "particle_id", "0"), "particle_id", r"0 means noise"),
    ("cell of unknown hit", "cells", _set_field(0, "hit_id", "42"), "hit_id", r"1 hit id\(s\) not in .*hits\.csv"),
    ("pandas index column", "hits", lambda l: ["," + l[0]] + [f"{i}," + x for i, x in enumerate(l[1:])],
     "Unnamed: 0", r"unexpected column 'Unnamed: 0'.*pandas index"),
    ("ragged row", "hits", lambda l: l[:2] + [l[2] + ",5"] + l[3:], None, r"malformed CSV .*line 3"),
]


@pytest.mark.parametrize("part,edit,column,pattern", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_csv_names_file_and_column(tmp_path, event_factory, part, edit, column, pattern):
    write_event(event_factory(cells=True), tmp_path)
    path = tmp_path / f"event000001000-{part}.csv"
    _edit_csv(path, edit)
    with pytest.raises(InputError) as info:
        read_event(tmp_path / "event000001000")
    message = str(info.value)
    assert message.startswith(str(path)), message  # the file is named first
    if column is not None:
        assert f"'{column}'" in message, message
    assert re.search(pattern, message), message
    assert "\n" not in message  # one line, printable by the CLI as is


@pytest.mark.parametrize("content,pattern", [
    (b"", r"file is empty \(0 bytes\)"),
    (b"hit_id,x,y,z,volume_id,layer_id,module_id\n", r"no data rows \(only a header\)"),
    (b"\n\n", r"file is empty \(no header line\)"),
    (b"\xff\xfe\x00binary\x00", r"not a text CSV file \(invalid start byte at byte 0\)$"),
    (gzip.compress(b"hit_id,x,y,z,volume_id,layer_id,module_id\n1,2,3,4,8,2,1\n", mtime=0), r"gzip data: name it \.csv\.gz"),
])
def test_empty_or_binary_files(tmp_path, content, pattern):
    path = tmp_path / "event000000001-hits.csv"
    path.write_bytes(content)
    with pytest.raises(InputError, match=pattern) as info:
        read_event(tmp_path / "event000000001")
    assert str(info.value).startswith(str(path))


@pytest.mark.parametrize("content,pattern", [
    (b"this is not gzip data at all", r"unreadable gzip data"),
    (gzip.compress(b"hit_id,x,y,z,volume_id,layer_id,module_id\n1,2,3,4,8,2,1\n", mtime=0)[:-12], r"unreadable gzip data"),
    (gzip.compress(b"", mtime=0), r"file is empty \(no header line\)"),
])
def test_unreadable_gzip(tmp_path, content, pattern):
    path = tmp_path / "event000000001-hits.csv.gz"
    path.write_bytes(content)
    with pytest.raises(InputError, match=pattern) as info:
        read_event(tmp_path / "event000000001")
    assert str(info.value).startswith(str(path))


def test_missing_files(tmp_path, event_factory):
    with pytest.raises(InputError, match=r"event000000001-hits\.csv: file not found"):
        read_event(tmp_path / "event000000001")
    with pytest.raises(InputError, match=r"nothing\.csv: file not found"):
        read_table(tmp_path / "nothing.csv", "hits")
    write_event(event_factory(), tmp_path)
    (tmp_path / "event000001000-hits.csv").unlink()
    with pytest.raises(InputError, match=r"event000001000-hits\.csv: file not found"):
        read_event(tmp_path / "event000001000")


def test_windows_line_endings_are_accepted(tmp_path, event_factory):
    event = event_factory()
    (path, *_) = write_event(event, tmp_path)
    path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    pd.testing.assert_frame_equal(read_table(path, "hits"), event.hits)


def test_csv_and_gz_of_the_same_part_is_ambiguous(tmp_path, event_factory):
    write_event(event_factory(), tmp_path)
    gz = tmp_path / "event000001000-truth.csv.gz"
    gz.write_bytes(gzip.compress((tmp_path / "event000001000-truth.csv").read_bytes()))
    with pytest.raises(InputError, match=r"truth\.csv and .*truth\.csv\.gz both exist"):
        read_event(tmp_path / "event000001000")


def test_in_memory_validation_names_table_and_column(event_factory):
    event = event_factory()
    event.hits["x"] = event.hits["x"].astype(np.float64)
    event.hits.loc[3, "x"] = np.nan
    with pytest.raises(InputError, match=r"^event000001000 hits: column 'x': missing value .* at row 3$"):
        validate_event(event)
    event = event_factory()
    event.particles["q"] = event.particles["q"].astype(np.float32)
    with pytest.raises(InputError, match=r"particles: column 'q': expected integers"):
        validate_event(event, source="sim event 5")
    event = event_factory()
    event.truth = event.truth.iloc[:0]
    with pytest.raises(InputError, match=r"truth: no data rows"):
        validate_event(event)
    event = event_factory()
    event.hits["x"] = pd.Series(["1"] * len(event.hits), dtype=object)
    event.hits.loc[0, "x"] = None
    with pytest.raises(InputError, match=r"hits: column 'x': missing value .* at row 0"):
        validate_event(event)
    event = event_factory()
    event.hits["layer_id"] = event.hits["layer_id"].astype("Int64")  # nullable pandas dtype
    assert validate_event(event).hits["layer_id"].dtype == np.int32
    event.hits.loc[5, "layer_id"] = pd.NA
    with pytest.raises(InputError, match=r"hits: column 'layer_id': missing value .* at row 5"):
        validate_event(event)


def test_large_file_duplicate_is_found_at_its_line(tmp_path):
    """A 100k-hit file whose only fault is on its last line: the vectorised checks name that line."""
    n = 100_000
    rng = np.random.default_rng(1)
    hits = pd.DataFrame({"hit_id": rng.permutation(n) + 1, "x": rng.normal(size=n), "y": rng.normal(size=n),
                         "z": rng.normal(size=n), "volume_id": 8, "layer_id": 2, "module_id": 1})
    hits.loc[n - 1, "hit_id"] = hits.loc[0, "hit_id"]  # duplicate found at the very end
    path = tmp_path / "event000000001-hits.csv"
    hits.to_csv(path, index=False)
    with pytest.raises(InputError, match=rf"duplicate id \d+ at line {n + 1}"):
        read_table(path, "hits")
