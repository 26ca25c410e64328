"""Matching metrics on a hand-made event, binned efficiencies and bootstrap intervals."""

import numpy as np
import pandas as pd
import pytest

from gnntrack.tracks import bootstrap as BS
from gnntrack.tracks import matching as M


def particles_table(rows):
    """rows: (particle_id, pt, eta) -> TrackML particles columns used by matching."""
    pid, pt, eta = map(np.array, zip(*rows))
    return pd.DataFrame({"particle_id": pid, "px": pt, "py": np.zeros_like(pt), "pz": pt * np.sinh(eta)})


@pytest.fixture
def hand_event():
    parts = particles_table([(1, 2.0, 0.0), (2, 0.5, 1.0), (3, 3.0, 0.5), (4, 5.0, 0.0), (5, 2.0, -1.0)])
    # (track, particle) hit lists, see the expected counts in the test
    layout = [(0, 1, 5),                     # T0: p1 complete and pure (perfect)
              (1, 3, 3), (1, 0, 1),          # T1: p3 3/4, purity 3/4
              (2, 3, 1), (2, 2, 1), (2, 0, 2),  # T2: noise majority -> fake
              (3, 2, 3),                     # T3: p2 (pT 0.5: not reconstructable) 3/4
              (4, 4, 2),                     # T4: 2 hits -> not a candidate track; p4 has only 2 hits
              (5, 5, 3), (6, 5, 3)]          # T5, T6: p5 split in halves (LHC duplicates)
    track = np.concatenate([np.full(n, t) for t, _, n in layout])
    particle = np.concatenate([np.full(n, p) for _, p, n in layout])
    return particle, track, parts


def test_hand_counts(hand_event):
    particle, track, parts = hand_event
    res = M.match_tracks(particle, track, parts)
    assert res.counts["double_majority"] == dict(n_particles=3, n_tracks=6, n_matched_tracks=3,
                                                 n_matched_particles=2, n_matched_tracks_rec=2)
    assert res.counts["lhc"] == dict(n_particles=3, n_tracks=6, n_matched_tracks=5,
                                     n_matched_particles=3, n_matched_tracks_rec=4)
    assert res.counts["perfect"] == dict(n_particles=3, n_tracks=6, n_matched_tracks=1,
                                         n_matched_particles=1, n_matched_tracks_rec=1)
    rates = res.rates()
    assert rates["double_majority"] == pytest.approx(dict(efficiency=2 / 3, fake_rate=0.5, duplicate_rate=0.0))
    assert rates["lhc"] == pytest.approx(dict(efficiency=1.0, fake_rate=1 / 6, duplicate_rate=0.25))
    assert rates["perfect"] == pytest.approx(dict(efficiency=1 / 3, fake_rate=5 / 6, duplicate_rate=0.0))
    p = res.particles.set_index("particle_id")
    assert p.reconstructable.to_dict() == {0: False, 1: True, 2: False, 3: True, 4: False, 5: True}
    assert p.loc[5, "n_tracks_lhc"] == 2 and p.loc[1, "pt"] == pytest.approx(2.0)


def test_cuts_are_configurable(hand_event):
    particle, track, parts = hand_event
    cfg = M.default_matching_config()
    cfg.pt_min = 0.0
    cfg.min_track_hits = 1
    res = M.match_tracks(particle, track, parts, cfg)
    assert res.counts["double_majority"]["n_particles"] == 4      # p2 joins (p4 still has 2 hits)
    assert res.counts["double_majority"]["n_tracks"] == 7         # T4 is now a candidate track
    cfg.eta_max = 0.25
    assert M.match_tracks(particle, track, parts, cfg).counts["lhc"]["n_particles"] == 1  # only p1


def test_binned_efficiency(hand_event):
    particle, track, parts = hand_event
    res = M.match_tracks(particle, track, parts)
    table = M.binned_efficiency(res.particles, "pt", [0.0, 1.0, 2.5, 10.0])
    assert table.n_total.tolist() == [1, 2, 1]           # p2 | p1, p5 | p3
    assert table.n_matched.tolist() == [1, 1, 1]
    assert table.efficiency.tolist() == pytest.approx([1.0, 0.5, 1.0])
    assert table.error.tolist() == pytest.approx([0.0, 0.5 / np.sqrt(2), 0.0])
    assert (table.cp_low <= table.efficiency).all() and (table.cp_high >= table.efficiency).all()
    assert table.cp_low[0] < 1.0  # the exact interval keeps a width at efficiency 1
    eta = M.binned_efficiency(res.particles, "eta", [-2, 0.25, 2], scheme="lhc")  # pT cut applies: p2 out
    assert eta.n_total.tolist() == [2, 1] and eta.n_matched.tolist() == [2, 1]


def test_no_particle_table_and_noise_only():
    res = M.match_tracks(np.array([0, 0, 0]), np.array([1, 1, 1]), None)
    assert res.counts["lhc"]["n_tracks"] == 1 and res.counts["lhc"]["n_matched_tracks"] == 0
    assert np.isnan(res.rates()["lhc"]["efficiency"]) and res.rates()["lhc"]["fake_rate"] == 1.0


def _event_table(rng, n_events):
    n_part = rng.integers(80, 120, n_events)
    matched = rng.binomial(n_part, 0.9)
    return pd.DataFrame({"n_particles": n_part, "n_matched_particles": matched,
                         "score": rng.normal(0.8, 0.05, n_events)})


SPECS = {"efficiency": ("ratio", "n_matched_particles", "n_particles"),
         "inefficiency": ("ratio_complement", "n_matched_particles", "n_particles"),
         "trackml_score": ("mean", "score")}


def test_bootstrap_contains_point_and_shrinks():
    rng = np.random.default_rng(0)
    small = BS.bootstrap_metrics(_event_table(rng, 8), SPECS, n_boot=500, seed=1)
    large = BS.bootstrap_metrics(_event_table(rng, 200), SPECS, n_boot=500, seed=1)
    for res in (small, large):
        for m in res.values():
            assert m["ci_low"] <= m["value"] <= m["ci_high"]
    for name in SPECS:
        assert (large[name]["ci_high"] - large[name]["ci_low"]) < 0.5 * (small[name]["ci_high"] - small[name]["ci_low"])
    table = _event_table(rng, 8)
    assert small["efficiency"]["n_events"] == 8
    # pooled ratio point estimate and determinism
    again = BS.bootstrap_metrics(table, SPECS, n_boot=200, seed=3)
    assert again == BS.bootstrap_metrics(table, SPECS, n_boot=200, seed=3)
    assert again["efficiency"]["value"] == pytest.approx(table.n_matched_particles.sum() / table.n_particles.sum())
    assert again["inefficiency"]["value"] == pytest.approx(1 - again["efficiency"]["value"])


def test_bootstrap_single_event_has_no_interval():
    res = BS.bootstrap_metrics({"n_particles": [10], "n_matched_particles": [9], "score": [0.7]}, SPECS)
    assert res["efficiency"]["value"] == pytest.approx(0.9)
    assert np.isnan(res["efficiency"]["ci_low"]) and res["efficiency"]["n_boot"] == 0


def test_auc_from_histograms_matches_rank_auc():
    from gnntrack.train.metrics import roc_auc

    rng = np.random.default_rng(2)
    labels = rng.random(3000) < 0.3
    scores = np.round(np.clip(rng.normal(0.4 + 0.2 * labels, 0.2), 0, 0.999), 3)  # on bin centres: exact
    bins = (scores * 1000).astype(int)
    pos = np.bincount(bins[labels], minlength=1000)
    neg = np.bincount(bins[~labels], minlength=1000)
    assert BS.auc_from_histograms(pos, neg) == pytest.approx(roc_auc(scores, labels), abs=1e-12)
