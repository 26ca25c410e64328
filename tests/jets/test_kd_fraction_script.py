"""scripts/jets_kd_fraction.py on the synthetic jets: one fraction, a plain and a distilled student."""

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "jets_kd_fraction.py"


def load_script():
    spec = importlib.util.spec_from_file_location("jets_kd_fraction", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fraction_study_trains_both_students_on_the_same_test_jets(teacher_run, jet_files, tmp_path, capsys):
    _, teacher = teacher_run
    module = load_script()
    args = ["--teacher", str(teacher), "--jets", *jet_files, "--out", str(tmp_path), "--fractions", "0.5",
            "--steps", "4", "--batch", "16", "--model", "jet_pfn"]
    assert module.main(args) == 0
    saved = json.loads((tmp_path / "fraction.json").read_text())
    plain, kd = saved["points"]
    assert (plain["distilled"], kd["distilled"]) == (False, True)
    assert plain["n_train"] == kd["n_train"] == 56  # half of the 112 training jets of 160
    for point in (plain, kd):
        result = json.loads((tmp_path / point["run"] / "result.json").read_text())
        assert result["test_auc"] == point["test_auc"] and result["n_test_items"] == 32
    kd_config = json.loads((tmp_path / kd["run"] / "config.json").read_text())
    assert kd_config["data"]["jets"]["teacher_dir"] == str(teacher.resolve())
    assert (tmp_path / "fraction.png").is_file()
    assert "| 0.5 | 56 |" in capsys.readouterr().out
    # finished runs are read back, not trained again: the same numbers
    assert module.main(args) == 0
    assert json.loads((tmp_path / "fraction.json").read_text())["points"] == saved["points"]
