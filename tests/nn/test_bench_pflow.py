"""scripts/bench_pflow.py's pure pieces: the bin recall counts same-particle pairs sharing a bin,
the fitted exponent of an exact power law is its power, toy events have the asked size.
(Its timings belong to the benchmark command, not the test suite.)"""


import numpy as np

from tests.scripts_loader import load_script


def test_recall_exponent_and_event_size():
    bench = load_script("bench_pflow")
    particle = np.array([1, 1, 1, 2, 2, 0, 0])   # particle 1: 3 pairs, particle 2: 1 pair; 0 = noise
    bins = np.array([0, 0, 1, 1, 1, 0, 0])       # (0, 1) of particle 1 and (3, 4) share a bin
    assert bench.pair_recall(bins, particle) == 2 / 4
    sizes = np.array([1000, 2000, 4000, 8000])
    assert abs(bench.fit_exponent(sizes, 3e-6 * sizes ** 1.5) - 1.5) < 1e-9
    nodes, node_y, pid = bench.toy_event(777, seed=3)
    assert nodes.shape == (777, 17) and node_y.shape == (777, 7) and pid.shape == (777,)
