"""TrackML reader/writer: round trips, determinism, parts selection, directories."""

from __future__ import annotations

import errno
import gzip
import os
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gnntrack.errors import InputError
from gnntrack.io.event import SCHEMAS, Event
from gnntrack.io.trackml import (event_id_from_prefix, list_event_prefixes, read_event, read_events,
                                 read_table, validate_event, write_event)


def assert_events_equal(a: Event, b: Event) -> None:
    assert a.event_id == b.event_id
    for part in ("hits", "truth", "particles", "cells"):
        ta, tb = getattr(a, part), getattr(b, part)
        assert (ta is None) == (tb is None), part
        if ta is not None:
            pd.testing.assert_frame_equal(ta, tb, check_exact=True)


@pytest.mark.parametrize("compress", [False, True])
def test_round_trip_exact(tmp_path, event_factory, compress):
    event = event_factory(cells=True)
    paths = write_event(event, tmp_path, compress=compress)
    suffix = ".csv.gz" if compress else ".csv"
    assert [p.name for p in paths] == [f"event000001000-{p}{suffix}" for p in ("hits", "truth", "particles", "cells")]
    back = read_event(tmp_path / "event000001000")
    assert_events_equal(back, event)
    for part in SCHEMAS:
        table = getattr(back, part)
        assert list(table.columns) == list(SCHEMAS[part])
        assert [table[c].dtype for c in table] == [np.dtype(t) for t in SCHEMAS[part].values()]


def test_round_trip_random_float32_is_exact(tmp_path, event_factory):
    """Every float32 value (any magnitude, sign, zero) survives write -> read bit for bit (in the
    truth momenta: hit positions far beyond a detector are refused on reading)."""
    rng = np.random.default_rng(0)
    event = event_factory()
    n = 2000
    values = (rng.standard_normal(n) * 10.0 ** rng.uniform(-30, 30, n)).astype(np.float32)
    values[:4] = [0.0, -0.0, np.finfo(np.float32).max, np.finfo(np.float32).tiny]
    small = (values % 1000.0).astype(np.float32)  # positions within +-1 m
    hits = pd.DataFrame({
        "hit_id": np.arange(1, n + 1), "x": small, "y": small[::-1].copy(), "z": -small,
        "volume_id": 8, "layer_id": 2, "module_id": rng.integers(0, 10**6, n),
    })
    truth = pd.DataFrame({
        "hit_id": hits["hit_id"], "particle_id": 0, "tx": small, "ty": small, "tz": small,
        "tpx": values, "tpy": values[::-1].copy(), "tpz": -values, "weight": np.float32(0.0),
    })
    write_event(Event(event_id=7, hits=hits, truth=truth), tmp_path)
    back = read_event(tmp_path / "event000000007")
    for table, original, columns in ((back.hits, hits, "xyz"), (back.truth, truth, ("tpx", "tpy", "tpz"))):
        for c in columns:
            np.testing.assert_array_equal(table[c].to_numpy().view(np.uint32),
                                          original[c].to_numpy().view(np.uint32))


@pytest.mark.parametrize("compress", [False, True])
def test_write_is_deterministic(tmp_path, event_factory, compress):
    a = write_event(event_factory(), tmp_path / "a", compress=compress)
    # same values given as float64 / int64 tables -> same bytes (the writer types them first)
    event = event_factory()
    event.hits = event.hits.astype({"x": np.float64, "volume_id": np.int64})
    b = write_event(event, tmp_path / "b", compress=compress)
    for pa, pb in zip(a, b):
        assert pa.read_bytes() == pb.read_bytes()
    if compress:  # gzip header: no time stamp, no file name
        raw = a[0].read_bytes()
        assert raw[4:8] == b"\0\0\0\0" and not raw[3] & 0x08
        assert gzip.decompress(raw).startswith(b"hit_id,x,y,z,volume_id,layer_id,module_id\n1,32.1,0.5,-10.0,8,2,1\n")


def test_written_files_follow_the_umask(tmp_path, event_factory):
    old = os.umask(0o022)
    try:
        paths = write_event(event_factory(), tmp_path)
    finally:
        os.umask(old)
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o644 for p in paths)


def test_write_leaves_no_temporary_files_and_replaces_stale_versions(tmp_path, event_factory):
    write_event(event_factory(cells=True), tmp_path, compress=False)
    event = event_factory()
    event.truth = None
    written = write_event(event, tmp_path, compress=True)
    # old .csv versions and the truth/cells this event no longer has are gone: one file per part
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in written)
    assert read_event(tmp_path / "event000001000").truth is None


def test_write_validates_first(tmp_path, event_factory):
    event = event_factory()
    event.truth.loc[2, "particle_id"] = 99  # not in particles
    with pytest.raises(InputError, match=r"event000001000 truth: column 'particle_id'.*99"):
        write_event(event, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_truth_is_returned_in_hit_order(tmp_path, event_factory):
    event = event_factory()
    write_event(event, tmp_path)
    truth_path = tmp_path / "event000001000-truth.csv"
    shuffled = pd.read_csv(truth_path).sample(frac=1.0, random_state=3)
    shuffled.to_csv(truth_path, index=False)
    back = read_event(tmp_path / "event000001000")
    assert_events_equal(back, validate_event(event))


def test_parts_selection_and_test_set_layout(tmp_path, event_factory):
    event = event_factory(cells=True)
    write_event(event, tmp_path)
    prefix = tmp_path / "event000001000"
    only_hits = read_event(prefix, parts=("hits",))
    assert only_hits.truth is None and only_hits.particles is None and only_hits.cells is None
    pd.testing.assert_frame_equal(only_hits.hits, event.hits)
    no_cells = read_event(prefix, parts=("hits", "truth"))
    assert no_cells.truth is not None and no_cells.cells is None and no_cells.particles is None
    # a test set: hits (and cells) only; truth/particles absent -> None unless required
    for part in ("truth", "particles"):
        (tmp_path / f"event000001000-{part}.csv").unlink()
    test_event = read_event(prefix)
    assert test_event.truth is None and test_event.particles is None and test_event.cells is not None
    with pytest.raises(InputError, match=r"event000001000-truth\.csv: file not found"):
        read_event(prefix, required=("hits", "truth"))
    with pytest.raises(InputError, match="unknown part"):
        read_event(prefix, parts=("hits", "tracks"))


def test_particles_without_particle_type(tmp_path, event_factory):
    event = event_factory(particle_type=False)
    (path_hits, _, path_particles) = write_event(event, tmp_path)
    assert path_particles.read_text().splitlines()[0] == "particle_id,vx,vy,vz,px,py,pz,q,nhits"
    back = read_event(path_hits)  # a part file is accepted as the prefix
    assert "particle_type" not in back.particles
    assert_events_equal(back, event)
    assert read_table(path_particles, "particles")["q"].dtype == np.int32


def test_directory_listing_and_iteration(tmp_path, event_factory):
    write_event(event_factory(event_id=3), tmp_path, compress=True)
    write_event(event_factory(event_id=1), tmp_path)
    hits_only = event_factory(event_id=2)
    hits_only.truth = hits_only.particles = None
    write_event(hits_only, tmp_path)
    (tmp_path / "event000000009-hits.txt").write_text("not an event file")
    (tmp_path / ".event000000004-hits.csv.abc.csv").write_text("temporary file of a write")
    (tmp_path / "notes.csv").write_text("a\n1\n")
    (tmp_path / "event000000005").mkdir()
    prefixes = list_event_prefixes(tmp_path)
    assert [p.name for p in prefixes] == ["event000000001", "event000000002", "event000000003"]
    assert all(p.parent == tmp_path for p in prefixes)
    events = list(read_events(tmp_path))
    assert [e.event_id for e in events] == [1, 2, 3]
    assert events[1].truth is None and events[2].truth is not None
    assert [e.event_id for e in read_events(tmp_path, parts=("hits",), limit=2)] == [1, 2]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no TrackML event files"):
        next(read_events(empty))
    with pytest.raises(InputError, match="not a directory"):
        list_event_prefixes(tmp_path / "missing")


def test_event_id_from_prefix(tmp_path):
    assert event_id_from_prefix("train_1/event000001000") == 1000
    with pytest.raises(InputError, match="event<digits>"):
        event_id_from_prefix(tmp_path / "run7")


def test_validate_event_does_not_modify_input(event_factory):
    event = event_factory()
    event.hits = event.hits.astype({"x": np.float64})
    typed = validate_event(event)
    assert event.hits["x"].dtype == np.float64 and typed.hits["x"].dtype == np.float32


def _failing_write_bytes(part: str, monkeypatch) -> None:
    """Makes the write of `part`'s temporary file fail as on a full disk (no file name)."""
    real_write_bytes = Path.write_bytes

    def write_bytes(self, data):
        if self.name.startswith(".") and f"-{part}." in self.name:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write_bytes(self, data)

    monkeypatch.setattr(Path, "write_bytes", write_bytes)


def test_an_event_whose_truth_cannot_be_written_is_not_written_at_all(tmp_path, event_factory, monkeypatch):
    with monkeypatch.context() as patch:
        _failing_write_bytes("truth", patch)
        with pytest.raises(OSError) as raised:
            write_event(event_factory(), tmp_path)
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(tmp_path / "event000001000-truth.csv")
    assert os.listdir(tmp_path) == [] and list_event_prefixes(tmp_path) == []
    written = write_event(event_factory(), tmp_path)  # the rerun
    assert sorted(os.listdir(tmp_path)) == sorted(p.name for p in written)
    assert_events_equal(read_event(tmp_path / "event000001000"), validate_event(event_factory()))


def test_a_failed_rewrite_keeps_the_old_event(tmp_path, event_factory, monkeypatch):
    write_event(event_factory(), tmp_path, compress=True)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    newer = event_factory()
    newer.hits["x"] += 1.0
    with monkeypatch.context() as patch:
        _failing_write_bytes("particles", patch)
        with pytest.raises(OSError):
            write_event(newer, tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_the_hits_file_appears_last_and_defines_the_event(tmp_path, event_factory, monkeypatch):
    """Readers list an event by its hits file, and the writer renames the hits file into place
    after every other part, so a reader never sees a half-written event."""
    renamed = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: (renamed.append(Path(dst).name), real_replace(src, dst)))
    write_event(event_factory(cells=True), tmp_path)
    assert renamed[-1] == "event000001000-hits.csv" and len(renamed) == 4
    orphan = event_factory(event_id=7)
    write_event(orphan, tmp_path)
    (tmp_path / "event000000007-hits.csv").unlink()  # e.g. a write killed before its hits file
    assert [p.name for p in list_event_prefixes(tmp_path)] == ["event000001000"]
