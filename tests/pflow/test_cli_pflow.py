"""`gnntrack pflow simulate`: flag, setting and disk errors are one line naming the flag, key or file."""

import errno
import os

import numpy as np
import pytest

from gnntrack.cli import main


@pytest.mark.parametrize("args, message", [
    (["--events", "0"], "--events must be >= 1 (got 0)"),
    (["--set", "ecal.nois_gev=1"], "unknown config key 'ecal.nois_gev'"),
    (["--set", "ecal.n_phi=250"], "'ecal.n_phi' must be a multiple of hcal.cells_per_ecal_cell"),
])
def test_bad_arguments_are_one_line(tmp_path, capsys, args, message):
    assert main(["pflow", "simulate", "--out", str(tmp_path / "out"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("gnntrack pflow: error: ") and message in err
    assert not (tmp_path / "out").exists()


def test_a_file_where_the_output_directory_belongs_is_one_line(tmp_path, capsys):
    file = tmp_path / "results.txt"
    file.write_text("not a directory\n")
    assert main(["pflow", "simulate", "--out", str(file), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gnntrack pflow: error: --out ") and "not a directory" in err


def test_a_full_disk_is_one_line_naming_the_chunk_and_leaves_no_partial_file(tmp_path, monkeypatch, capsys):
    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # a failed write() names no file

    monkeypatch.setattr(np.lib.format, "write_array", no_space)
    out = tmp_path / "out"
    assert main(["pflow", "simulate", "--out", str(out), "--events", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"gnntrack pflow: error: {out / 'chunk_00000.npz'}: no space left on device; " \
                  "free some space (or choose another location) and run the command again"
    assert list(out.iterdir()) == []
