"""scripts/compare_particlenet.py at a tiny size: the JSON fields, and with PyTorch (when
installed) the reference model of the same size. Times are only checked to be there."""

import json

import pytest

from tests.scripts_loader import load_script

ARGS = ["--models", "particlenet_lite", "--batch", "4", "--constituents", "10", "--warmup", "0", "--repeats", "1"]


def test_ours_alone_reports_times_and_parameters(tmp_path, capsys):
    out = tmp_path / "cmp.json"
    assert load_script("compare_particlenet").main([*ARGS, "--skip-torch", "--json", str(out)]) == 0
    saved = json.loads(out.read_text())
    assert (saved["batch"], saved["constituents"], saved["mean_real"]) == (4, 10, 10.0)
    assert saved["jax_device"] and saved["torch_device"] in ("cpu", "cuda")  # auto: PyTorch follows JAX
    ours = saved["models"]["particlenet_lite"]["ours"]
    assert ours["train_s"] > 0 and ours["infer_s"] > 0
    assert abs(ours["params"] - 26_000) < 500  # the paper's ParticleNet-Lite size
    assert "torch" not in saved["models"]["particlenet_lite"]
    assert "particlenet_lite  ours train" in capsys.readouterr().out


def test_with_pytorch_the_reference_has_the_same_size_and_speedups_are_ratios(tmp_path):
    pytest.importorskip("torch")
    out = tmp_path / "cmp.json"
    assert load_script("compare_particlenet").main([*ARGS, "--json", str(out)]) == 0
    saved = json.loads(out.read_text())
    row = saved["models"]["particlenet_lite"]
    assert row["torch"]["device"] == saved["torch_device"]
    # same layers; the reference's BatchNorms (incl. one on the 7 inputs) vs our LayerNorms
    assert abs(row["torch"]["params"] - row["ours"]["params"]) / row["ours"]["params"] < 0.01
    for what in ("train", "infer"):
        assert row[f"{what}_speedup"] == pytest.approx(row["torch"][f"{what}_s"] / row["ours"][f"{what}_s"])
