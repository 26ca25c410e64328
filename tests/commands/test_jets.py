"""`gnntrack jets generate|baseline`: files in the reference layout, the same bytes for the same seed,
nothing but our own lines on stdout (no Pythia or FastJet banner), one-line errors."""

import pytest

from gnntrack.cli import main
from gnntrack.jets.formats import read_jets


def test_generate_both_writes_reproducible_files_and_prints_the_baseline(tmp_path, capfd):
    # capfd: FastJet prints its banner from C++ on file descriptor 1, which capsys would not see
    args = ["jets", "generate", "--process", "both", "--jets", "6", "--seed", "4", "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    out = capfd.readouterr().out
    lines = out.strip().splitlines()
    assert len(lines) == 3, out
    assert "6 top jets" in lines[0] and "6 qcd jets" in lines[1]
    assert lines[2].startswith("baseline on top + QCD (towers, seed 4): 6 top, 6 QCD jets; ROC AUC mass window")
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    for name in ("top_towers_seed4.h5", "qcd_towers_seed4.h5"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
        assert (tmp_path / "a" / name).with_suffix(".json").is_file()
    jets = read_jets(tmp_path / "a" / "top_towers_seed4.h5")
    assert len(jets) == 6 and jets.label.tolist() == [1] * 6

    assert main(["jets", "baseline", str(tmp_path / "a" / "top_towers_seed4.h5"),
                 str(tmp_path / "a" / "qcd_towers_seed4.h5")]) == 0
    assert "6 top, 6 QCD jets; ROC AUC mass window" in capfd.readouterr().out


def test_generate_with_two_workers(tmp_path, capfd):
    assert main(["jets", "generate", "--process", "qcd", "--jets", "5", "--workers", "2", "--detector", "truth",
                 "--out", str(tmp_path), "--no-progress"]) == 0
    assert capfd.readouterr().out.count("\n") == 1  # the workers' FastJet banners stay off stdout too
    assert len(read_jets(tmp_path / "qcd_truth_seed0.h5")) == 5


@pytest.mark.parametrize("args, message", [
    (["generate", "--process", "top", "--jets", "0"], "--jets and --workers must be >= 1 (got 0, 1)"),
    (["generate", "--process", "qcd", "--jets", "1", "--pt-hat", "700", "600"], "the pT-hat window must satisfy"),
    (["baseline", "missing.h5"], "missing.h5: no such file"),
])
def test_errors_are_one_line(tmp_path, capsys, args, message):
    if args[0] == "generate":
        args = [*args, "--out", str(tmp_path / "out")]
    assert main(["jets", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("gnntrack jets: error: ") and message in err
