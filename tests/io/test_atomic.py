"""Atomic writes: a failed write leaves the old file (or none) and names the file it was writing;
groups of files appear in a chosen order; output directories are checked before any work."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from gnntrack.errors import InputError
from gnntrack.io.atomic import atomic_path, atomic_paths, check_directory_path, write_text_atomic


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
def test_a_write_to_a_full_disk_names_the_file_and_keeps_the_old_one(tmp_path):
    path = tmp_path / "result.json"
    write_text_atomic(path, "old\n")
    with pytest.raises(OSError) as raised:
        with atomic_path(path):
            with open("/dev/full", "wb") as f:  # the kernel's ENOSPC; write() errors name no file
                f.write(b"new\n")
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(path)
    assert path.read_text() == "old\n" and os.listdir(tmp_path) == ["result.json"]


def test_atomic_paths_rename_in_the_given_order_only_when_all_are_written(tmp_path, monkeypatch):
    finals = [tmp_path / "b-truth.csv", tmp_path / "a-hits.csv"]
    renamed = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: (renamed.append(Path(dst).name), real_replace(src, dst)))
    with atomic_paths(finals) as tmps:
        for tmp, final in zip(tmps, finals):
            assert tmp.parent == tmp_path and tmp.name.startswith(f".{final.name}.")
            assert tmp.name.endswith(".csv")  # writers that infer a format from the suffix still can
            tmp.write_text(final.name)
        assert renamed == []
    assert renamed == ["b-truth.csv", "a-hits.csv"]
    assert sorted(os.listdir(tmp_path)) == ["a-hits.csv", "b-truth.csv"]
    assert [p.read_text() for p in finals] == ["b-truth.csv", "a-hits.csv"]


def test_atomic_paths_remove_every_temporary_on_failure(tmp_path):
    finals = [tmp_path / "x.csv", tmp_path / "y.csv"]
    with pytest.raises(OSError) as raised:
        with atomic_paths(finals) as tmps:
            tmps[0].write_text("x")
            raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))
    assert raised.value.filename is None  # a group cannot know which of its files failed
    assert os.listdir(tmp_path) == []


def test_check_directory_path(tmp_path):
    assert check_directory_path(tmp_path, "--out") == tmp_path
    assert check_directory_path(tmp_path / "new" / "deeper", "--out") == tmp_path / "new" / "deeper"
    file = tmp_path / "notes.txt"
    file.write_text("x")
    with pytest.raises(InputError, match=rf"^--out {file}: exists and is not a directory"):
        check_directory_path(file, "--out")
    with pytest.raises(InputError, match=rf"^--workdir {file / 'run'}: {file} is not a directory"):
        check_directory_path(file / "run", "--workdir")
