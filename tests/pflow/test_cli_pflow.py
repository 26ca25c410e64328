"""`gnntrack pflow simulate`: flag and setting errors are one line naming the flag or key."""

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
