"""Pythia 8 events: final-state arrays, reseeding equals a fresh instance, pileup collisions."""

import numpy as np

from gnntrack.pflow import generate
from gnntrack.pflow.generate import EventGenerator, chunk_seeds


def _events(generator, seed, chunk, n):
    generator.reseed(*chunk_seeds(seed, chunk))
    return [generator.next() for _ in range(n)]


def test_a_reseeded_generator_repeats_a_fresh_one_event_for_event():
    # bitwise: the same Pythia build and seeds on the same machine give the same event records
    reused = EventGenerator(0.0)
    _events(reused, 1, 0, 1)  # advance its streams first
    again = _events(reused, 5, 2, 2)
    fresh = _events(EventGenerator(0.0), 5, 2, 2)
    for a, b in zip(again, fresh):
        np.testing.assert_array_equal(a.p4, b.p4)
        np.testing.assert_array_equal(a.pid, b.pid)
    event = fresh[0]
    assert len(event) > 50 and (event.collision == 0).all()
    assert event.p4.dtype == np.float64 and event.pid.dtype == np.int32
    np.testing.assert_array_equal(event.charge != 0, np.isin(np.abs(event.pid), [11, 13, 211, 321, 2212, 3112,
                                                                                  3222, 3312, 3334]))
    assert not np.isin(np.abs(event.pid), [1, 2, 21, 6, 24]).any()  # final state: no partons, tops, Ws
    assert not np.isin(np.abs(event.pid), [111]).any()  # pi0 decays; K0S (tau0 27 mm) does not
    assert np.allclose(event.p4[:, :3].sum(axis=0), 0.0, atol=1e-6 * event.p4[:, 3].sum())  # momentum balance


def test_pileup_adds_poisson_collisions_numbered_from_one(monkeypatch):
    # the hard process as pileup too: Pythia's SoftQCD initialisation takes seconds
    monkeypatch.setattr(generate, "PILEUP_PROCESS", generate.HARD_PROCESSES["ttbar"])
    generator = EventGenerator(3.0)
    seed_hard, seed_pileup, rng = chunk_seeds(7, 0)
    expected = np.random.default_rng([7, 0, 1]).poisson(3.0, size=2)
    generator.reseed(seed_hard, seed_pileup, rng)
    for n_pileup in expected:
        event = generator.next()
        assert set(np.unique(event.collision)) == set(range(int(n_pileup) + 1))
