"""Jet generation: the truth matching and the leading-jet pick on hand-made events, then a few dozen
real Pythia 8 + FastJet jets that must pass the cuts."""

import numpy as np
import pytest

from gnntrack.errors import ConfigError
from gnntrack.jets.generate import (
    EventBatch, GenerationConfig, delta_r, generate_share, hadronic_tops, leading_jets, matched_tops,
    padded_constituents, pythia_settings, shares, worker_seeds)
from gnntrack.jets.preprocess import kinematics
from gnntrack.jets.towers import Particles
from gnntrack.jets.types import BACKGROUND, SIGNAL


def p4(pt, eta, phi, m=0.0):
    """(px, py, pz, E) of (pt, eta, phi, m)."""
    return np.array([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta), np.sqrt((pt * np.cosh(eta)) ** 2 + m * m)])


def test_settings_and_seeds():
    settings = pythia_settings(GenerationConfig(process="top", pt_hat_min=550, pt_hat_max=650), 17)
    for line in ("Beams:eCM = 14000.", "PartonLevel:MPI = off", "Top:gg2ttbar = on", "Top:qqbar2ttbar = on",
                 "24:onIfAny = 1 2 3 4 5", "PhaseSpace:pTHatMin = 550", "Random:seed = 17", "Print:quiet = on"):
        assert line in settings
    assert "HardQCD:all = on" in pythia_settings(GenerationConfig(process="qcd"), 1)
    seeds = worker_seeds(3, "top", 4)
    assert seeds == worker_seeds(3, "top", 4) and len(set(seeds)) == 4
    assert seeds != worker_seeds(3, "qcd", 4) and all(1 <= s <= 900_000_000 for s, _ in seeds)
    assert shares(10, 3) == [4, 3, 3]
    with pytest.raises(ConfigError, match="detector must be one of"):
        GenerationConfig(detector="delphes").validate()


def toy_ttbar_batch():
    """One event: a hard-process top (copy) -> decaying top -> W b; the W has one recoil copy, whose
    daughters are u d~; a second top decays leptonically (W -> e nu) and must be ignored."""
    rows = [  # (pid, daughter1, daughter2, p)
        (90, -1, -1, p4(0, 0, 0)),
        (6, 2, 2, p4(600, 0.1, 0.0, 173)),   # 1: hard-process copy
        (6, 3, 4, p4(600, 0.1, 0.0, 173)),   # 2: decaying copy
        (24, 5, 5, p4(400, 0.0, 0.1, 80)),   # 3: W
        (5, -1, -1, p4(200, 0.3, -0.2)),     # 4: b
        (24, 6, 7, p4(400, 0.0, 0.1, 80)),   # 5: W copy
        (2, -1, -1, p4(250, -0.1, 0.2)),     # 6
        (-1, -1, -1, p4(150, 0.15, -0.05)),  # 7
        (-6, 9, 10, p4(600, -1.0, 3.0, 173)),  # 8: second top
        (-24, 11, 12, p4(400, -1.0, 3.0, 80)),  # 9
        (-5, -1, -1, p4(200, -1.0, 3.0)),    # 10
        (11, -1, -1, p4(200, -1.0, 3.0)),    # 11
        (-12, -1, -1, p4(200, -1.0, 3.0)),   # 12
    ]
    pid, d1, d2, p = zip(*rows)
    n = len(rows)
    return EventBatch(np.array(pid), np.ones(n, np.int64), np.array(d1), np.array(d2), np.stack(p),
                      np.zeros(n, np.int64), np.array([0, n]))


def test_hadronic_top_is_the_decaying_copy_with_b_and_the_w_quarks():
    event, top, quarks = hadronic_tops(toy_ttbar_batch())
    np.testing.assert_array_equal(event, [0])
    np.testing.assert_array_equal(top[0], p4(600, 0.1, 0.0, 173))
    np.testing.assert_array_equal(quarks[0], [p4(200, 0.3, -0.2), p4(250, -0.1, 0.2), p4(150, 0.15, -0.05)])


def test_a_top_jet_needs_the_top_and_all_three_quarks_inside():
    tops = hadronic_tops(toy_ttbar_batch())
    matched, truth = matched_tops(p4(600, 0.1, 0.0, 173)[None], tops, 0.8)
    assert matched.tolist() == [True] and np.array_equal(truth[0], tops[1][0])
    # a jet at (eta, phi) = (-0.2, 0.4) has the top (0.50 away) and two quarks within 0.6, not the b
    assert delta_r(p4(1, -0.2, 0.4), tops[1][0]) < 0.6 < delta_r(p4(1, -0.2, 0.4), tops[2][0, 0])
    matched, truth = matched_tops(p4(600, -0.2, 0.4)[None], tops, 0.6)
    assert matched.tolist() == [False] and not truth.any()


def test_leading_jet_and_its_constituents_per_event():
    # event 0: a 300 GeV pair at phi 0 and a 100 GeV particle at phi pi; event 1: one particle
    p = np.stack([p4(200, 0, 0), p4(100, 0, np.pi), p4(100, 0.1, 0.1), p4(50, 1.0, 1.0)])
    jet, members, counts = leading_jets(Particles(np.array([0, 0, 0, 1]), p, np.zeros(4, bool)), 3, 0.8, 10.0)
    np.testing.assert_allclose(jet[0], p[0] + p[2], rtol=1e-12)
    np.testing.assert_allclose(jet[1], p[3], rtol=1e-12)
    np.testing.assert_array_equal(jet[2], 0.0)  # no particles, no jet
    np.testing.assert_array_equal(counts, [2, 1, 0])
    assert sorted(members[:2].tolist()) == [0, 2] and members[2:].tolist() == [3]


def test_padded_constituents_sort_by_pt_and_cut_at_size():
    p = np.stack([p4(1, 0, 0), p4(3, 0, 0), p4(2, 0, 0), p4(5, 0, 0)])
    out = padded_constituents(p, np.array([0, 1, 2, 3]), np.array([3, 1]), 2)
    assert out.shape == (2, 2, 4) and out.dtype == np.float32
    np.testing.assert_allclose(out[0, :, 1], [3, 2])  # column 1 is px = pT here
    np.testing.assert_allclose(out[1, :, 0], [5, 0])  # E first; padding zero


@pytest.mark.parametrize("process, detector", [("top", "towers"), ("qcd", "truth")])
def test_generated_jets_pass_the_cuts(process, detector):
    config = GenerationConfig(process=process, detector=detector)
    jets, truth, counts = generate_share(config, 12, worker_seeds(1, process, 1)[0])
    assert len(jets) == 12 and counts["events"] >= 12
    assert np.all(jets.label == (SIGNAL if process == "top" else BACKGROUND))
    pt, eta, _ = kinematics(jets.jet.astype(np.float64))
    assert np.all((pt > 550) & (pt < 650) & (np.abs(eta) < 2))
    assert jets.constituents.shape[1:] == (200, 4) and np.all(jets.n_constituents > 2)
    c = jets.constituents
    assert np.all(np.diff(np.hypot(c[..., 1], c[..., 2]), axis=1) <= 0)  # by decreasing pT
    # the constituents add up to the jet (anti-kT E-scheme), up to float32 rounding
    np.testing.assert_allclose(c.astype(np.float64).sum(axis=1), jets.jet, rtol=1e-4, atol=1e-2)
    if process == "top":
        top = truth.top[:, [1, 2, 3, 0]].astype(np.float64)
        assert np.all(delta_r(jets.jet[:, [1, 2, 3, 0]].astype(np.float64), top) < 0.8)
    else:
        assert not truth.top.any()
    again, _, _ = generate_share(config, 12, worker_seeds(1, process, 1)[0])
    np.testing.assert_array_equal(again.constituents, jets.constituents)  # same seeds, same process


def test_a_pt_hat_window_that_gives_no_jets_is_a_config_error():
    config = GenerationConfig(process="qcd", detector="truth", pt_hat_min=20.0, pt_hat_max=30.0, give_up_events=40)
    with pytest.raises(ConfigError, match=r"no qcd jet passed the cuts .* in \d+ events: choose a pT-hat window"):
        generate_share(config, 1, (1, 1))
