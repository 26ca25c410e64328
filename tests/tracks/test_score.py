"""TrackML score: hand-computed cases, agreement with an independent simple reference on random
events and perturbed submissions, submission validation and CSV round trip."""

from collections import Counter

import numpy as np
import pandas as pd
import pytest

from gnntrack.errors import InputError
from gnntrack.tracks import score as S


def reference_score(truth: pd.DataFrame, submission: pd.DataFrame) -> float:
    """Deliberately simple reference of the public definition: a Python loop over tracks."""
    particle_of = dict(zip(truth.hit_id, truth.particle_id))
    weight_of = dict(zip(truth.hit_id, truth.weight.astype(float)))
    particle_size = Counter(truth.particle_id)
    total = 0.0
    for _, hits in submission.groupby("track_id"):
        counts = Counter(particle_of[h] for h in hits.hit_id)
        best = max(counts.values())
        major = min(p for p, c in counts.items() if c == best)
        if 2 * best > len(hits) and 2 * best > particle_size[major]:
            total += sum(weight_of[h] for h in hits.hit_id if particle_of[h] == major)
    return total / sum(weight_of.values())


def random_event(rng, n_particles=150, noise_fraction=0.1, noise_weight=0.0):
    sizes = rng.integers(1, 15, size=n_particles)
    pid = np.repeat(rng.choice(np.arange(1, 10**6), n_particles, replace=False), sizes)
    n_noise = int(noise_fraction * pid.size)
    pid = np.r_[pid, np.zeros(n_noise, np.int64)]
    weight = rng.random(pid.size).astype(np.float32)
    weight[pid == 0] = noise_weight
    weight /= weight.sum()
    hit_id = rng.permutation(pid.size) + 1
    return pd.DataFrame({"hit_id": hit_id, "particle_id": pid, "weight": weight})


def perfect_submission(truth):
    # one track per particle; noise hits each a singleton
    track = truth.particle_id.to_numpy().copy()
    noise = track == 0
    track[noise] = track.max() + 1 + np.arange(noise.sum())
    return pd.DataFrame({"event_id": 1, "hit_id": truth.hit_id, "track_id": track})


def perturb(sub, rng, kind):
    sub = sub.copy()
    tracks = sub.track_id.unique()
    if kind == "shuffle":
        return sub.sample(frac=1.0, random_state=int(rng.integers(1 << 31)))
    if kind == "merge":  # merge random pairs of tracks
        a = rng.choice(tracks, len(tracks) // 3, replace=False)
        b = rng.choice(tracks, len(a), replace=True)
        sub["track_id"] = sub.track_id.replace(dict(zip(a, b)))
    elif kind == "split":  # split tracks: a random half of their hits move to a new id
        move = rng.random(len(sub)) < 0.3
        sub.loc[move, "track_id"] = sub.loc[move, "track_id"] + 10**7
    elif kind == "reassign":  # random hits go to random existing tracks
        move = rng.random(len(sub)) < 0.2
        sub.loc[move, "track_id"] = rng.choice(tracks, move.sum())
    elif kind == "random":
        sub["track_id"] = rng.integers(0, len(sub) // 3, len(sub))
    elif kind == "relabel":  # track ids are arbitrary labels
        mapping = dict(zip(tracks, rng.permutation(len(tracks)) * 7 + 3))
        sub["track_id"] = sub.track_id.map(mapping)
    return sub


# -- hand-computed ---------------------------------------------------------------------------

@pytest.fixture
def hand_truth():
    # particle 1: hits 1-4 (0.1 each); particle 2: hits 5-7 (0.2 each); hit 8 noise (weight 0)
    return pd.DataFrame({"hit_id": np.arange(1, 9), "particle_id": [1, 1, 1, 1, 2, 2, 2, 0],
                         "weight": [0.1] * 4 + [0.2] * 3 + [0.0]})


@pytest.mark.parametrize("tracks, expected", [
    ([0, 0, 0, 0, 1, 1, 1, 2], 1.0),          # perfect
    ([0, 0, 0, 1, 0, 1, 1, 1], 0.3),          # p1 3/4 in track 0; track 1 = {p1, p2, p2, 0}: 2/4 not > 1/2
    ([0, 0, 1, 1, 2, 2, 2, 2], 0.6),          # p1 split 2+2: completeness 1/2 fails; p2 3/4 & 3/3
    ([0] * 8, 0.0),                           # one track: majority p1 4/8 is not > 1/2
    ([0, 1, 2, 3, 4, 5, 6, 7], 0.0),          # all singletons: no track holds > 1/2 of a particle
    ([0, 0, 0, 5, 5, 5, 5, 9], 0.3 + 0.6),    # hit 4 with p2: p1 3/4 ok; p2 3/4 purity, 3/3 ok
])
def test_hand_cases(hand_truth, tracks, expected):
    sub = pd.DataFrame({"hit_id": np.arange(1, 9), "track_id": tracks})
    assert S.trackml_score(hand_truth, sub) == pytest.approx(expected, abs=1e-12)
    assert reference_score(hand_truth, sub) == pytest.approx(expected, abs=1e-12)


def test_tie_goes_to_smallest_particle_and_weights_are_normalised(hand_truth):
    sub = pd.DataFrame({"hit_id": np.arange(1, 9), "track_id": [0, 0, 1, 1, 0, 0, 1, 1]})
    tracks = S.analyze_tracks(hand_truth, sub)
    assert tracks.major_particle_id.tolist() == [1, 1]        # 2-2 ties -> particle 1 in both
    assert tracks.major_nhits.tolist() == [2, 2]
    assert tracks.major_particle_nhits.tolist() == [4, 4]
    doubled = hand_truth.assign(weight=hand_truth.weight * 3)  # score is normalised by the total weight
    perfect = pd.DataFrame({"hit_id": np.arange(1, 9), "track_id": [0, 0, 0, 0, 1, 1, 1, 2]})
    assert S.trackml_score(doubled, perfect) == pytest.approx(1.0)


def test_noise_is_not_special_cased():
    # with non-zero noise weight a pure noise "track" counts, as in the public definition
    truth = pd.DataFrame({"hit_id": [1, 2, 3, 4], "particle_id": [0, 0, 0, 7], "weight": [0.25] * 4})
    sub = pd.DataFrame({"hit_id": [1, 2, 3, 4], "track_id": [0, 0, 0, 1]})
    assert S.trackml_score(truth, sub) == pytest.approx(1.0)
    assert reference_score(truth, sub) == pytest.approx(1.0)


# -- agreement with the reference ------------------------------------------------------------

@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("kind", ["none", "shuffle", "merge", "split", "reassign", "random", "relabel"])
def test_agrees_with_reference(seed, kind):
    rng = np.random.default_rng(seed)
    truth = random_event(rng, noise_weight=0.0 if seed else 1e-3)
    sub = perfect_submission(truth)
    if kind != "none":
        sub = perturb(sub, rng, kind)
        sub = perturb(sub, rng, "split") if kind == "merge" else sub  # merged and split together
    ours = S.trackml_score(truth, sub)
    ref = reference_score(truth, sub)
    assert abs(ours - ref) < 1e-9
    if kind in ("none", "shuffle", "relabel"):  # all but the noise singletons count
        noise_share = truth.weight[truth.particle_id == 0].astype(float).sum() / truth.weight.astype(float).sum()
        assert ours == pytest.approx(1.0 - noise_share, abs=1e-6)
    elif kind in ("merge", "split", "reassign"):
        assert 0.0 < ours < 1.0


# -- validation and files --------------------------------------------------------------------

def test_validation_errors(hand_truth):
    ok = pd.DataFrame({"event_id": 1, "hit_id": np.arange(1, 9), "track_id": np.arange(8)})
    with pytest.raises(InputError, match="missing"):
        S.trackml_score(hand_truth, ok.iloc[:-2])
    with pytest.raises(InputError, match="duplicate hit_id"):
        S.trackml_score(hand_truth, pd.concat([ok, ok.iloc[:1]]))
    with pytest.raises(InputError, match="not in the event"):
        S.trackml_score(hand_truth, pd.concat([ok, pd.DataFrame({"event_id": [1], "hit_id": [99], "track_id": [0]})]))
    with pytest.raises(InputError, match="missing column.*track_id"):
        S.trackml_score(hand_truth, ok.rename(columns={"track_id": "track"}))
    with pytest.raises(InputError, match="track_id must hold integers"):
        S.trackml_score(hand_truth, ok.assign(track_id=ok.track_id + 0.5))


def test_submission_csv_round_trip(tmp_path, hand_truth):
    sub = S.make_submission(1000, np.arange(1, 9), [0, 0, 0, 0, 1, 1, 1, 2])
    path = S.write_submission(sub, tmp_path / "sub.csv")
    back = S.read_submission(path)
    assert back.columns.tolist() == list(S.SUBMISSION_COLUMNS)
    pd.testing.assert_frame_equal(back, sub)
    assert S.trackml_score(hand_truth, back) == pytest.approx(1.0)
    gz = S.write_submission(sub, tmp_path / "sub.csv.gz")
    pd.testing.assert_frame_equal(S.read_submission(gz), sub)
    (tmp_path / "bad.csv").write_text("hit,track\n1,2\n")
    with pytest.raises(InputError, match="bad.csv: missing column"):
        S.read_submission(tmp_path / "bad.csv")
    with pytest.raises(InputError, match="not found"):
        S.read_submission(tmp_path / "nope.csv")


def test_agrees_with_reference_on_simulated_trackml_files(tmp_path):
    """Real-format events: simulated, written as TrackML CSV and read back (float32 weights)."""
    from gnntrack.detector.simulate import default_simulation_config, simulate_events
    from gnntrack.io.trackml import list_event_prefixes, read_event

    cfg = default_simulation_config()
    cfg.pileup = 3
    simulate_events(tmp_path, 1, cfg, seed=5)
    event = read_event(list_event_prefixes(tmp_path)[0], ("hits", "truth", "particles"))
    rng = np.random.default_rng(0)
    sub = perfect_submission(event.truth)
    expected_perfect = 1.0 - event.truth.weight[event.truth.particle_id == 0].astype(float).sum() / \
        event.truth.weight.astype(float).sum()
    assert S.trackml_score(event.truth, sub) == pytest.approx(expected_perfect, abs=1e-6)
    for kind in ("shuffle", "merge", "split", "reassign", "random"):
        perturbed = perturb(sub, rng, kind)
        assert abs(S.trackml_score(event.truth, perturbed) - reference_score(event.truth, perturbed)) < 1e-9


def test_truncated_or_corrupt_submission_names_the_file(tmp_path):
    sub = S.make_submission(1000, np.arange(1, 2001), np.arange(2000) // 7)
    data = S.write_submission(sub, tmp_path / "sub.csv.gz").read_bytes()
    (tmp_path / "truncated.csv.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"truncated.csv.gz: unreadable gzip data \(Compressed file ended"):
        S.read_submission(tmp_path / "truncated.csv.gz")
    (tmp_path / "corrupt.csv.gz").write_bytes(data[:20] + bytes(len(data) - 20))
    with pytest.raises(InputError, match=r"corrupt.csv.gz: unreadable gzip data"):
        S.read_submission(tmp_path / "corrupt.csv.gz")
    (tmp_path / "empty.csv").write_bytes(b"")
    with pytest.raises(InputError, match=r"empty.csv: file is empty"):
        S.read_submission(tmp_path / "empty.csv")
