"""Event files: deterministic npz chunks, errors that name the directory or file."""

import zipfile

import numpy as np
import pytest

from gnntrack.errors import InputError
from gnntrack.pflow.store import read_events, write_npz_atomic


def test_npz_chunks_load_with_numpy_and_do_not_carry_the_time_of_writing(tmp_path):
    arrays = {"a": np.arange(5, dtype=np.int64), "b": np.ones((2, 3), np.float32)}
    write_npz_atomic(tmp_path / "x.npz", arrays)
    with zipfile.ZipFile(tmp_path / "x.npz") as zf:
        assert {info.date_time for info in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    with np.load(tmp_path / "x.npz") as data:
        np.testing.assert_array_equal(data["b"], arrays["b"])
    assert [p.name for p in tmp_path.iterdir()] == ["x.npz"]  # no temporary left behind


def test_reading_a_directory_without_events_says_how_to_make_them(tmp_path):
    with pytest.raises(InputError, match=r"no pflow.json.*gnntrack pflow simulate --out"):
        read_events(tmp_path)


def test_a_damaged_chunk_is_named(pflow_dir, tmp_path):
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in pflow_dir.iterdir():
        (copy / path.name).write_bytes(path.read_bytes()[:100] if path.name == "chunk_00001.npz"
                                       else path.read_bytes())
    assert len(read_events(copy, limit=2)) == 2  # the damaged chunk is not needed
    with pytest.raises(InputError, match=r"chunk_00001.npz: cannot read"):
        read_events(copy)
