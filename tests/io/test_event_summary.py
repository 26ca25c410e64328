"""event_summary on a hand-made event with known answers, and the `inspect` command."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gnntrack.cli import main
from gnntrack.io.summary import event_summary, particle_kinematics, quantile_summary
from gnntrack.io.trackml import write_event


def test_summary_counts(event_factory):
    s = event_summary(event_factory())
    assert s["event_id"] == 1000 and s["n_hits"] == 8 and s["n_cells"] is None
    assert s["hits_per_volume"] == {"7": 1, "8": 5, "9": 1, "13": 1}
    assert s["hits_per_layer"][:3] == [{"volume_id": 7, "layer_id": 14, "n_hits": 1},
                                       {"volume_id": 8, "layer_id": 2, "n_hits": 2},
                                       {"volume_id": 8, "layer_id": 4, "n_hits": 2}]
    assert sum(r["n_hits"] for r in s["hits_per_layer"]) == 8
    assert s["n_noise_hits"] == 2 and s["noise_fraction"] == pytest.approx(0.25)
    assert s["n_particles"] == 3 and s["n_particles_with_hits"] == 2
    assert s["truth_weight_sum"] == pytest.approx(1.0, abs=1e-6)
    assert s["charge_counts"] == {"-1": 2, "1": 1}
    hpp = s["hits_per_particle"]
    assert hpp["n"] == 2 and hpp["mean"] == 3.0 and hpp["min"] == 3.0 and hpp["max"] == 3.0
    # pT: 2, 0.5, 5 GeV; only particle 11 (pT 2, η 0, 3 hits) is in the pT>1, |η|<2.5 selection
    assert s["pt_gev"]["max"] == pytest.approx(5.0) and s["pt_gev"]["median"] == pytest.approx(2.0)
    assert s["selection"] == {"pt_min_gev": 1.0, "abs_eta_max": 2.5, "n_particles": 1,
                              "mean_hits_per_particle": 3.0}
    json.dumps(s)  # plain Python types only


def test_summary_of_a_test_set_event(event_factory):
    event = event_factory()
    event.truth = None
    s = event_summary(event)
    assert s["noise_fraction"] is None and s["n_particles_with_hits"] is None
    # without truth, hit counts come from particles.nhits
    assert s["hits_per_particle"]["n"] == 2 and s["selection"]["mean_hits_per_particle"] == 3.0
    event.particles = None
    s = event_summary(event)
    assert s["n_particles"] is None and s["pt_gev"] is None and s["selection"] is None
    assert s["n_hits"] == 8


def test_kinematics_and_quantiles(event_factory):
    pt, eta = particle_kinematics(event_factory().particles)
    np.testing.assert_allclose(pt, [2.0, 0.5, 5.0], rtol=1e-6)
    np.testing.assert_allclose(eta, [0.0, np.arcsinh(0.2), np.arcsinh(40.0)], rtol=1e-6)
    q = quantile_summary(np.arange(101))
    assert q["median"] == 50 and q["q05"] == 5 and q["n"] == 101
    assert quantile_summary(np.array([]))["mean"] is None


def test_inspect_command(tmp_path, event_factory, capsys):
    write_event(event_factory(cells=True), tmp_path, compress=True)
    prefix = str(tmp_path / "event000001000")
    assert main(["inspect", prefix]) == 0
    out = capsys.readouterr().out
    assert "event 000001000" in out and "hits per layer" in out and "noise fraction" in out
    assert main(["inspect", prefix + "-hits.csv.gz", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["n_hits"] == 8 and s["n_cells"] == 4 and s["noise_fraction"] == 0.25
    assert main(["inspect", str(tmp_path), "--json", "--parts", "hits"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["event_id"] == 1000 and s["noise_fraction"] is None


def test_inspect_reports_bad_input_in_one_line(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "event000000001")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gnntrack inspect: error:") and "event000000001-hits.csv: file not found" in err
    assert "\n" not in err


def test_inspect_directory_with_limit(tmp_path, event_factory, capsys):
    for event_id in (3, 1, 2):
        write_event(event_factory(event_id=event_id), tmp_path)
    assert main(["inspect", str(tmp_path), "--json", "--limit", "2"]) == 0
    summaries = json.loads(capsys.readouterr().out)
    assert [s["event_id"] for s in summaries] == [1, 2]
    assert main(["inspect", str(tmp_path), "--parts", "hits,tracks"]) == 2
    assert "unknown part(s) 'tracks'" in capsys.readouterr().err
