"""The particle-flow report: markdown tables with intervals, plots, metrics.json, all atomic."""

import json
import warnings

import numpy as np

from gnntrack.pflow.evaluate import default_pflow_evaluation_config, evaluate_particle_flow
from gnntrack.pflow.types import PARTICLE_CLASSES, TARGET_COLUMNS
from gnntrack.report.pflow import format_interval, write_pflow_report


def event(phi, scale=1.0):
    """A 40 GeV charged hadron and a 30 GeV photon back to back (rows in the target layout)."""
    rows = np.zeros((2, len(TARGET_COLUMNS)), np.float32)
    for i, (c, pt, p) in enumerate(((1, 40.0, phi), (PARTICLE_CLASSES.index("photon"), 30.0, phi + np.pi))):
        rows[i] = (c, 1 - i, pt * scale, 0.5, np.sin(p), np.cos(p), pt * scale * np.cosh(0.5))
    return rows


def evaluation(scales_ml, scales_baseline, **changes):
    config = default_pflow_evaluation_config()
    config.n_boot = 50
    config.update(changes)
    targets = [event(0.4 * k) for k in range(len(scales_ml))]
    return evaluate_particle_flow(targets, {"ml": [event(0.4 * k, s) for k, s in enumerate(scales_ml)],
                                            "baseline": [event(0.4 * k, s) for k, s in enumerate(scales_baseline)]},
                                  config)


def test_report_files_tables_and_metrics_json(tmp_path):
    metrics, plot_data = evaluation([0.95, 1.0, 1.05, 1.0], [0.8, 1.2, 0.9, 1.1])
    files = write_pflow_report(tmp_path, metrics, plot_data)
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == [
        "class_rates.png", "jet_response.png", "met_response.png", "metrics.json", "report.md"]  # no temporaries
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["files"]["jet_response"] == "plots/jet_response.png" and files["report"] == str(tmp_path / "report.md")
    report = (tmp_path / "report.md").read_text()
    resolution = format_interval(metrics["algorithms"]["ml"]["jets"]["resolution"])
    assert f"| jet resolution (IQR/median) | {resolution} |" in report
    assert "Difference ml - baseline" in report and "target jets with pT > 20.0 GeV" in report
    assert "| photon | 1.000 [1.000, 1.000] | 0.000 [0.000, 0.000] |" in report
    assert "![jet_response](plots/jet_response.png)" in report


def test_without_plots_and_without_matched_jets(tmp_path):
    metrics, plot_data = evaluation([1.0, 1.0], [1.0, 1.0], jet_pt_min=100.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. matplotlib's 'no artists with labels' for an empty legend
        write_pflow_report(tmp_path / "a", metrics, plot_data)
    assert (tmp_path / "a" / "plots" / "jet_response.png").stat().st_size > 0
    write_pflow_report(tmp_path / "b", metrics, plot_data, plots=False)
    assert not (tmp_path / "b" / "plots").exists()
    assert "![" not in (tmp_path / "b" / "report.md").read_text()
    assert "| jet resolution (IQR/median) | n/a | n/a |" in (tmp_path / "b" / "report.md").read_text()


def test_format_interval():
    assert format_interval({"value": 0.12345, "ci_low": 0.1, "ci_high": 0.15}) == "0.123 [0.100, 0.150]"
    assert format_interval({"value": 0.5, "ci_low": float("nan"), "ci_high": float("nan")}) == "0.500"
    assert format_interval({"value": float("nan"), "ci_low": 0.1, "ci_high": 0.2}) == "n/a"
