"""Particle-flow metrics on tiny hand-made events whose jets and MET are known by construction."""

import json
import math
import shutil

import numpy as np
import pytest

from gnntrack.cli import main
from gnntrack.errors import InputError
from gnntrack.pflow.evaluate import (default_pflow_evaluation_config, evaluate_particle_flow, load_pflow_run,
                                     missing_et, particles_from_rows, predict_events, prediction_rows,
                                     select_events, weighted_quantiles)
from gnntrack.pflow.store import read_events
from gnntrack.pflow.types import PARTICLE_CLASSES, TARGET_COLUMNS

CH, NH, PH = (PARTICLE_CLASSES.index(c) for c in ("charged_hadron", "neutral_hadron", "photon"))


def rows(particles):
    """[N, 7] target-layout rows from (class, charge, pt, eta, phi) tuples."""
    out = np.zeros((len(particles), len(TARGET_COLUMNS)), np.float32)
    for i, (c, q, pt, eta, phi) in enumerate(particles):
        out[i] = (c, q, pt, eta, np.sin(phi), np.cos(phi), pt * np.cosh(eta))
    return out


def scaled(r, factor):
    """The same particles with pT (and E) times `factor`."""
    out = r.copy()
    out[:, [2, 6]] *= factor
    return out


def event(k):
    """Two particles of one jet (40 GeV at phi = k) and a 25 GeV photon opposite, 1 'none'."""
    return rows([(CH, 1, 30.0, 0.0, k), (NH, 0, 10.0, 0.1, k), (PH, 0, 25.0, 1.0, k + np.pi), (0, 0, 0, 0, 0)])


def config(**changes):
    c = default_pflow_evaluation_config()
    c.n_boot = 200
    c.update(changes)
    return c


def test_prediction_rows_take_argmax_and_values():
    scores = np.array([[0.1, 0.7, 0.2, 0, 0, 0], [0.9, 0.1, 0, 0, 0, 0]])
    charge = np.array([[0.1, 0.1, 0.8], [0.2, 0.7, 0.1]])
    values = np.arange(10, dtype=np.float32).reshape(2, 5)
    out = prediction_rows(scores, charge, values)
    np.testing.assert_array_equal(out[:, :2], [[1, 1], [0, 0]])
    np.testing.assert_array_equal(out[:, 2:], values)


def test_particles_skip_none_and_met_is_minus_the_vector_sum():
    p = particles_from_rows([event(0.0), rows([]), event(1.0)])
    np.testing.assert_array_equal(p.counts, [3, 0, 3])
    met = missing_et(p)
    # 40 GeV along phi = k, 25 GeV opposite: MET 15 GeV along phi = k + pi
    np.testing.assert_allclose(met[0], [-15.0, 0.0], atol=1e-5)
    np.testing.assert_array_equal(met[1], [0.0, 0.0])
    np.testing.assert_allclose(met[2], [-15 * np.cos(1.0), -15 * np.sin(1.0)], atol=1e-5)


def test_jet_and_met_numbers_known_by_construction():
    targets = [event(0.3 * k) for k in range(6)]
    ml = [scaled(t, 0.9) for t in targets]  # every jet and MET 0.9 of the truth
    m, plots = evaluate_particle_flow(targets, {"ml": ml}, config(met_min_gev=10.0))
    jets, met = m["algorithms"]["ml"]["jets"], m["algorithms"]["ml"]["met"]
    assert jets["n_gen_jets"] == 12 and jets["n_matched"] == 12  # the 40 GeV jet and the photon's
    assert jets["response"]["value"] == pytest.approx(0.9, rel=1e-6)
    assert jets["resolution"]["value"] == pytest.approx(0.0, abs=1e-6)
    assert jets["matching_efficiency"]["value"] == 1.0
    assert met["response"]["value"] == pytest.approx(0.9, rel=1e-6)
    # MET_reco - MET_gen = -0.1 MET_gen: components 1.5 (cos, sin) of phi = 0.3 k + pi, pooled
    delta = -1.5 * np.concatenate([[np.cos(0.3 * k + np.pi), np.sin(0.3 * k + np.pi)] for k in range(6)])
    q25, q75 = np.quantile(delta, [0.25, 0.75], method="inverted_cdf")
    assert met["sigma_gev"]["value"] == pytest.approx((q75 - q25) / 1.349, rel=1e-4)
    np.testing.assert_allclose(plots["reconstructions"]["ml"].met, 13.5, rtol=1e-5)
    assert m["settings"]["jet_pt_min"] == 20.0 and m["difference"] == {}


def test_jets_below_threshold_or_unmatched_do_not_count():
    targets = [event(0.0), event(1.0)]
    shifted = [t.copy() for t in targets]
    shifted[1][:2, 3] += 0.3  # the second event's 40 GeV jet moves 0.3 in eta: no match
    m, _ = evaluate_particle_flow(targets, {"ml": shifted}, config(jet_pt_min=30.0))
    jets = m["algorithms"]["ml"]["jets"]
    assert (jets["n_gen_jets"], jets["n_matched"]) == (2, 1)  # the 25 GeV jets are below 30
    assert jets["matching_efficiency"]["value"] == 0.5


def test_class_efficiency_and_fake_rate_per_element():
    t = event(0.0)
    r = t.copy()
    r[1, 0] = PH      # the neutral hadron called a photon
    r[3, 0] = CH      # the 'none' element called a charged hadron
    m, _ = evaluate_particle_flow([t, t], {"ml": [r, r]}, config())
    classes = m["algorithms"]["ml"]["classes"]
    assert classes["charged_hadron"]["efficiency"]["value"] == 1.0
    assert classes["charged_hadron"]["fake_rate"]["value"] == 0.5
    assert classes["neutral_hadron"]["efficiency"]["value"] == 0.0
    assert math.isnan(classes["neutral_hadron"]["fake_rate"]["value"])  # never predicted
    assert classes["photon"]["fake_rate"]["value"] == 0.5
    assert (classes["photon"]["n_true"], classes["photon"]["n_pred"]) == (2, 4)


def test_intervals_and_the_paired_difference():
    rng = np.random.default_rng(1)
    targets = [event(k) for k in rng.uniform(-3, 3, 30)]
    ml = [scaled(t, s) for t, s in zip(targets, rng.normal(1.0, 0.02, 30))]
    baseline = [scaled(t, s) for t, s in zip(targets, rng.normal(1.0, 0.2, 30))]
    m, _ = evaluate_particle_flow(targets, {"ml": ml, "baseline": baseline}, config())
    for name in ("ml", "baseline"):
        r = m["algorithms"][name]["jets"]["resolution"]
        assert r["ci_low"] <= r["value"] <= r["ci_high"] and r["ci_low"] < r["ci_high"]
    diff = m["difference"]["jet_resolution"]
    assert m["difference"]["of"] == "ml - baseline"
    assert diff["ci_high"] < 0  # ML's spread is ten times smaller by construction
    assert m["bootstrap"]["n_boot"] == 200 and m["n_events"] == 30
    # one event: no interval
    one, _ = evaluate_particle_flow(targets[:1], {"ml": ml[:1]}, config())
    assert math.isnan(one["algorithms"]["ml"]["jets"]["response"]["ci_low"])


def test_weighted_quantiles_are_numpys_inverted_cdf():
    rng = np.random.default_rng(0)
    values, group = rng.normal(size=50), rng.integers(0, 7, 50)
    weights = rng.integers(0, 3, (5, 7)).astype(float)
    got = weighted_quantiles(values, group, weights, (0.25, 0.5, 0.75))
    for b in range(5):
        # both pick one of the values (no interpolation): equal bitwise
        want = np.quantile(values, [0.25, 0.5, 0.75], weights=weights[b, group], method="inverted_cdf")
        np.testing.assert_array_equal(got[b], want)
    assert np.isnan(weighted_quantiles(values, group, np.zeros((1, 7)), (0.5,))).all()


# --- `gnntrack evaluate` of a tiny trained pflow run ---------------------------------------------

@pytest.fixture(scope="module")
def pflow_run(pflow_dir, tmp_path_factory):
    """A tiny MLPF (the smoke run's sizes) trained 1 step on the tiny events' first one (then
    1 val, 1 test)."""
    from gnntrack.configs.pflow import pflow_config
    from gnntrack.train.loop import train_and_evaluate

    workdir = tmp_path_factory.mktemp("pflow_run") / "run"
    c = pflow_config("lsh")
    c.data.input_dir = str(pflow_dir)
    c.data.n_train, c.data.n_val, c.data.n_test = 1, 1, 1
    c.model.hidden, c.model.n_layers, c.model.n_convs = 16, 1, 1
    c.model.bin_size, c.model.n_buckets, c.model.distance_dim = 16, 4, 4
    c.optimizer.warmup_steps = 0
    c.batching.precompile = False
    c.train.steps, c.train.eval_every, c.train.checkpoint_every, c.train.progress = 1, 1, 0, False
    train_and_evaluate(c, workdir)
    return workdir


def test_evaluate_a_pflow_run(pflow_run, pflow_dir, tmp_path, capsys):
    other = tmp_path / "events"  # the same events in another directory: all of them are evaluated
    shutil.copytree(pflow_dir, other)
    out = tmp_path / "report"
    assert main(["evaluate", "--workdir", str(pflow_run), "--input", str(other), "--out", str(out),
                 "--n-boot", "20", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)  # stdout is the JSON alone (no FastJet banner)
    metrics = json.loads((out / "metrics.json").read_text())
    events = read_events(other)
    assert printed["n_events"] == 3 and metrics["input"]["event_ids"] == [0, 1, 2]
    assert metrics["elements"]["n_test_items"] == sum(len(e.elements) for e in events)
    assert set(metrics["algorithms"]) == {"ml", "baseline"} and metrics["difference"]["of"] == "ml - baseline"
    # the baseline's numbers are those of the rows stored with the events (as JSON text: nan,
    # for a class never predicted, equals itself there)
    baseline, _ = evaluate_particle_flow([e.targets for e in events], {"baseline": [e.baseline for e in events]},
                                         config(n_boot=20))
    assert json.dumps(printed["algorithms"]["baseline"]) == json.dumps(baseline["algorithms"]["baseline"])
    assert (out / "report.md").read_text().startswith("# gnntrack evaluate: particle flow")
    assert all((out / "plots" / f"{n}.png").stat().st_size > 0 for n in ("jet_response", "met_response", "class_rates"))


def test_the_runs_own_event_directory_gives_its_test_events_only(pflow_run, pflow_dir):
    events, selection = select_events(load_pflow_run(pflow_run), pflow_dir)
    assert [e.event_id for e in events] == [2] and "test events" in selection  # 0 trained it, 1 validated


def test_evaluate_a_pflow_run_on_a_directory_without_pflow_events_is_one_line(pflow_run, tmp_path, capsys):
    assert main(["evaluate", "--workdir", str(pflow_run), "--input", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"gnntrack evaluate: error: {tmp_path}: no pflow.json; write particle-flow events there "
                   f"with 'gnntrack pflow simulate --out {tmp_path}'")


def test_a_run_of_another_task_is_refused(pflow_run, tmp_path):
    config_json = json.loads((pflow_run / "config.json").read_text())
    config_json["task"] = {"name": "node"}
    (tmp_path / "config.json").write_text(json.dumps(config_json))
    with pytest.raises(InputError, match="a run of the 'node' task, not 'pflow'"):
        load_pflow_run(tmp_path)


def test_a_run_saved_before_momentum_targets_existed_is_read_as_absolute(pflow_run, tmp_path):
    import json
    import shutil

    old = tmp_path / "old"
    shutil.copytree(pflow_run, old)
    config = json.loads((old / "config.json").read_text())
    assert config["task"].pop("momentum_targets") == "relative"
    (old / "config.json").write_text(json.dumps(config))
    assert load_pflow_run(old).task.momentum_targets == "absolute"
    assert load_pflow_run(pflow_run).task.momentum_targets == "relative"


def test_a_model_change_evaluates_the_same_parameters_with_one_bin(pflow_run, pflow_dir):
    """--model dense=true (every element sees every other) and bin_size above any event's size
    (one LSH bin per event) are the same function: rows to float32 round-off (the sums run in
    another order)."""
    events = read_events(pflow_dir)
    dense = load_pflow_run(pflow_run, model_overrides=("dense=true",))
    one_bin = load_pflow_run(pflow_run, model_overrides=("bin_size=4096",))
    assert dense.model.dense and dense.name == "run (dense=true)" and one_bin.model.bin_size == 4096
    for a, b in zip(predict_events(dense, events)[0], predict_events(one_bin, events)[0]):
        np.testing.assert_array_equal(a[:, :2], b[:, :2])  # class and charge: argmax, far from ties
        np.testing.assert_allclose(a[:, 2:], b[:, 2:], rtol=1e-4, atol=1e-5)


def test_compare_puts_a_second_run_beside_the_model_on_the_same_events(pflow_run, pflow_dir, tmp_path, capsys):
    other = tmp_path / "events"
    shutil.copytree(pflow_dir, other)
    out = tmp_path / "report"
    assert main(["evaluate", "--workdir", str(pflow_run), "--input", str(other), "--out", str(out), "--n-boot", "20",
                 "--compare", str(pflow_run), "--compare-model", "dense=true", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics["algorithms"]) == ["ml", "baseline", "run (dense=true)"]
    assert [d["of"] for d in printed["differences"]] == ["ml - baseline", "ml - run (dense=true)"]
    assert printed["difference"] == printed["differences"][0]
    assert metrics["compare"]["model_overrides"] == ["dense=true"] and metrics["run"]["model_overrides"] == []
    report = (out / "report.md").read_text()
    assert "Compared with run" in report and "Difference ml - run (dense=true)" in report
    # the same run unchanged beside itself: the same computation on the same events, so its
    # numbers equal the model's exactly and every paired difference is zero
    assert main(["evaluate", "--workdir", str(pflow_run), "--input", str(other), "--out", str(tmp_path / "same"),
                 "--n-boot", "20", "--compare", str(pflow_run), "--no-plots", "--json"]) == 0
    same = json.loads(capsys.readouterr().out)
    assert json.dumps(same["algorithms"]["run"]) == json.dumps(same["algorithms"]["ml"])
    diff = same["differences"][1]
    assert diff["met_sigma_gev"]["value"] == 0.0  # (the tiny events' jets may be too soft: nan there)
    assert all(diff[k]["value"] == 0.0 or math.isnan(same["algorithms"]["ml"]["jets"]["resolution"]["value"])
               for k in ("jet_resolution", "jet_response"))


def test_model_changes_and_compared_runs_are_checked(pflow_run, pflow_dir, tmp_path, capsys):
    args = ["evaluate", "--workdir", str(pflow_run), "--input", str(pflow_dir), "--n-boot", "5", "--no-plots"]
    assert main(args + ["--model", "no_such_key=1"]) == 2
    assert "'model.no_such_key'" in capsys.readouterr().err
    assert main(args + ["--model", "hidden=32"]) == 2  # new parameter shapes: not the trained model
    assert "model changes hidden=32 do not fit the parameters of" in capsys.readouterr().err
    assert main(args + ["--compare-model", "dense=true"]) == 2
    assert "give --compare RUN too" in capsys.readouterr().err
    # a compared run that trained on the events evaluated here is refused
    seen = tmp_path / "seen"
    shutil.copytree(pflow_run, seen)
    config = json.loads((seen / "config.json").read_text())
    config["data"].update(n_train=1, n_val=2, n_test=0)  # event 2, the first run's test event, validated it
    (seen / "config.json").write_text(json.dumps(config))
    assert main(args + ["--compare", str(seen)]) == 2
    assert "trained or validated that run" in capsys.readouterr().err
