"""scripts/jets_kd_fraction.py on the synthetic jets: one fraction, a plain and a distilled student."""

import json

import numpy as np

from gnntrack.train.metrics import roc_auc

from tests.scripts_loader import load_script


def test_fraction_study_trains_both_students_on_the_same_test_jets(teacher_run, jet_files, tmp_path, capsys):
    _, teacher = teacher_run
    module = load_script("jets_kd_fraction")
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


def test_the_distillation_gain_is_the_seed_mean_difference_with_a_paired_interval(tmp_path):
    module = load_script("jets_kd_fraction")
    rng = np.random.default_rng(0)
    labels = np.arange(400) % 2
    ids = rng.permutation(400)  # runs store their test jets in any order: matched by jet id
    points = []
    for seed in (0, 1):
        for distilled, shift in ((False, 0.0), (True, 0.4)):
            scores = rng.normal(size=400) + labels * (1.0 + shift)
            run = f"{'kd' if distilled else 'plain'}_s{seed}"
            (tmp_path / run).mkdir()
            np.savez(tmp_path / run / "test_predictions.npz", event_id=ids, scores=scores[ids][:, None],
                     targets=np.stack([labels[ids], np.ones(400)], 1))
            points.append({"fraction": 0.1, "distilled": distilled, "seed": seed, "run": run})
    gain = module.distillation_gain(tmp_path, points, 0.1, n_boot=200)
    aucs = {p["run"]: roc_auc(*module.test_scores(tmp_path / p["run"])) for p in points}
    expected = (aucs["kd_s0"] + aucs["kd_s1"] - aucs["plain_s0"] - aucs["plain_s1"]) / 2
    assert gain["seeds"] == 2 and abs(gain["auc_gain"] - expected) < 1e-12
    assert gain["low"] < gain["auc_gain"] < gain["high"] and gain["low"] > 0  # a clear gain by construction
