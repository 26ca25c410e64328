"""One tiny sweep trial through the real training loop (experiments/smoke.py): the trial is an
ordinary run directory with the sampled value applied, and validation reports reach the study."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gnntrack.config import load_config
from gnntrack.studies import search_space as ss
from gnntrack.studies.sweep import default_sweep_config, run_sweep_from_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_one_real_trial_is_an_ordinary_run_directory(tmp_path):
    config = load_config(ROOT / "experiments" / "smoke.py")
    with config.unlocked():
        config.sweep = default_sweep_config()
    config.sweep.space = (ss.log_uniform("optimizer.lr", 1e-3, 1e-2, grid=[5e-3]),)
    config.sweep.sampler = "grid"
    config.sweep.pruner = "median"
    config.sweep.metric = "val_auc"
    config.sweep.poll_seconds = 0.1

    result = run_sweep_from_config(config, tmp_path, show_progress=False, write_summary=False)

    df = result.trials_df
    assert list(df["state"]) == ["COMPLETE"] and result.best_params == {"optimizer.lr": 5e-3}
    run_dir = tmp_path / "trials" / "trial_0000"
    assert result.best_run_dir == str(run_dir)
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["optimizer"]["lr"] == 5e-3 and saved["seed"] == 0 and "sweep" not in saved
    assert saved["data"]["cache_dir"] == str(tmp_path / "data")  # trials share the data cache
    assert (run_dir / "metrics.jsonl").exists() and (run_dir / "trial.json").exists()
    final = json.loads((run_dir / "result.json").read_text())
    assert result.best_value == pytest.approx(final["val_auc"])
    assert df["last_step"].iloc[0] == final["steps"] == 6  # validations at steps 3 and 6 were reported
