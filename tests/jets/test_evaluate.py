import json

import numpy as np
import pytest

from gnntrack.cli import main
from gnntrack.errors import InputError
from gnntrack.jets.evaluate import default_jets_evaluation_config, evaluate_jets_run, paired_intervals
from gnntrack.jets.formats import write_reference_h5
from gnntrack.report.jets import read_evaluation, write_jets_comparison
from gnntrack.train.state import param_count
from tests.jets.conftest import synthetic_jets


def quick_config(**keys):
    config = default_jets_evaluation_config()
    config.update(dict(n_boot=30, latency_batches=(1, 8), latency_repeats=2, **keys))
    return config


def test_evaluate_on_the_runs_test_split_matches_its_training_test(teacher_run, tmp_path):
    result, run = teacher_run
    metrics = evaluate_jets_run(run, "test", tmp_path / "ev", config=quick_config())
    model = metrics["scorers"]["model"]
    assert metrics["input"]["n_jets"] == result["n_test_items"] == 32
    # the same checkpoint and jets through the chunked inference instead of the engine's eval step:
    # equal to float32 rounding, and AUC only moves if rounding reorders two scores
    assert abs(model["metrics"]["auc"] - result["test_auc"]) < 1e-3
    assert abs(model["metrics"]["accuracy"] - result["test_accuracy"]) <= 1 / 32
    low, high = model["intervals"]["auc"]
    assert low <= model["metrics"]["auc"] <= high
    # the mass window has no accuracy (its score is -|m - m_top| in GeV), only ranking metrics
    assert "accuracy" not in metrics["scorers"]["mass_window"]["metrics"]
    assert set(metrics["difference"]["intervals"]) == {"auc", "rejection_0.3", "rejection_0.5"}
    costs = metrics["costs"]
    assert costs["flops_per_jet"] > 0 and set(costs["latency_s_per_jet"]) == {"1", "8"}
    assert all(t > 0 for t in costs["latency_s_per_jet"].values())
    for name in ("metrics.json", "report.md", "roc.npz", "plots/roc.png", "plots/scores.png"):
        assert (tmp_path / "ev" / name).is_file(), name
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["run"]["step"] == result["steps"]
    saved, curves = read_evaluation(tmp_path / "ev")
    eff, rejection = curves["model"]
    assert np.all(np.diff(eff) >= 0) and np.all(rejection >= 1.0)


def test_a_public_layout_file_is_read_unchanged_and_counted_whole(teacher_run, tmp_path):
    _, run = teacher_run
    path = write_reference_h5(tmp_path / "test.h5", synthetic_jets(24, seed=7))
    metrics = evaluate_jets_run(run, str(path), tmp_path / "ev", config=quick_config(plots=False))
    assert metrics["input"]["n_jets"] == 24 and metrics["input"]["n_signal"] == 12
    assert metrics["input"]["source"] == str(path.resolve())
    assert not (tmp_path / "ev" / "plots").exists()


def test_the_cli_prints_the_table_and_the_comparison_puts_runs_side_by_side(teacher_run, tmp_path, capsys):
    result, run = teacher_run
    assert main(["evaluate", "--workdir", str(run), "--input", "test", "--out", str(tmp_path / "a"),
                 "--n-boot", "20", "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert "jet-mass window" in out and "MFLOPs" in out
    text = write_jets_comparison(tmp_path / "cmp", {"teacher": tmp_path / "a", "again": tmp_path / "a"})
    assert "| teacher (particlenet_lite) |" in text and "| again (particlenet_lite) |" in text
    assert "| jet-mass window |" in text and (tmp_path / "cmp" / "plots" / "roc_comparison.png").is_file()
    metrics = json.loads((tmp_path / "a" / "metrics.json").read_text())
    from gnntrack.jets.evaluate import load_jets_run
    assert metrics["costs"]["parameters"] == param_count(load_jets_run(run).params)


def test_bad_inputs_are_one_line_naming_the_path(teacher_run, tmp_path, capsys):
    _, run = teacher_run
    with pytest.raises(InputError, match="no jet file at .*missing.h5"):
        evaluate_jets_run(run, str(tmp_path / "missing.h5"), tmp_path / "ev", config=quick_config())
    (tmp_path / "bad.h5").write_bytes(b"not hdf5")
    assert main(["evaluate", "--workdir", str(run), "--input", str(tmp_path / "bad.h5"),
                 "--out", str(tmp_path / "ev2")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.h5" in err[0]
    with pytest.raises(InputError, match="not a jets evaluation"):
        read_evaluation(tmp_path)


def test_paired_intervals_of_a_scorer_against_itself_are_zero():
    rng = np.random.default_rng(0)
    labels = np.arange(200) % 2
    scores = rng.uniform(size=200) * 0.5 + labels * 0.3
    # the same array under two names: every resample gives identical metrics, so the difference is
    # exactly zero (same inputs, same operations: bitwise)
    intervals, diff = paired_intervals({"a": scores, "b": scores.copy()}, labels, 25, 0.95, 0)
    assert all(v == (0.0, 0.0) for v in diff.values())
    assert intervals["a"] == intervals["b"]
    low, high = intervals["a"]["auc"]
    assert 0.5 < low <= high <= 1.0


def test_compare_table_script_names_a_malformed_argument(tmp_path):
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "scripts" / "jets_compare_table.py"
    spec = importlib.util.spec_from_file_location("jets_compare_table", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(InputError, match="expected NAME=DIR, got 'teacher'"):
        module.main(["--out", str(tmp_path), "teacher"])
    with pytest.raises(InputError, match="not a jets evaluation"):
        module.main(["--out", str(tmp_path), f"teacher={tmp_path}"])
