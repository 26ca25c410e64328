"""gnntrack.pflow.bench (`gnntrack pflow bench`, `gnntrack bench --model mlpf`): the bin recall
counts same-particle pairs sharing a bin, the fitted exponent of an exact power law is its power,
toy events have the asked size, and the commands run and check their options. (Its timings belong
to the benchmark commands, not the test suite: only their presence is checked.)"""

import json

import numpy as np

from gnntrack.cli import main
from gnntrack.pflow import bench


def test_recall_exponent_and_event_size():
    particle = np.array([1, 1, 1, 2, 2, 0, 0])   # particle 1: 3 pairs, particle 2: 1 pair; 0 = noise
    bins = np.array([0, 0, 1, 1, 1, 0, 0])       # (0, 1) of particle 1 and (3, 4) share a bin
    assert bench.pair_recall(bins, particle) == 2 / 4
    sizes = np.array([1000, 2000, 4000, 8000])
    assert abs(bench.fit_exponent(sizes, 3e-6 * sizes ** 1.5) - 1.5) < 1e-9
    nodes, node_y, pid = bench.toy_event(777, seed=3)
    assert nodes.shape == (777, 17) and node_y.shape == (777, 7) and pid.shape == (777,)


def test_pflow_bench_recall_part_writes_its_rows(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["pflow", "bench", "--part", "recall", "--recall-size", "300", "--recall-bins", "16,64",
                 "--json", str(out)]) == 0
    rows = json.loads(out.read_text())["recall"]
    assert [(r["space"], r["bin_size"]) for r in rows] == [("eta_phi", 16), ("eta_phi", 64)]
    assert [r["chance"] for r in rows] == [16 / 300, 64 / 300]
    # bins of 64 are whole runs of four bins of 16 (chunks start at the same sorted positions), so
    # every pair that shares a bin of 16 shares one of 64
    assert 0.0 <= rows[0]["recall"] <= rows[1]["recall"] <= 1.0
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()] == rows


def test_bench_options_are_checked(capsys):
    assert main(["pflow", "bench", "--part", "scaling", "--messages", "lsh,quadratic"]) == 2
    assert "--messages: unknown 'quadratic'" in capsys.readouterr().err
    assert main(["pflow", "bench", "--part", "recall", "--recall-bins", "16,x"]) == 2
    assert "--recall-bins must be a comma-separated list of positive integers" in capsys.readouterr().err
    assert main(["bench", "--model", "mlpf", "--message", "dense", "--dtype", "float16"]) == 2
    assert "--dtype: unknown 'float16'" in capsys.readouterr().err


def test_bench_times_one_mlpf_train_step(capsys):
    assert main(["bench", "--model", "mlpf", "--nodes", "200", "--hidden", "16", "--steps", "1", "--warmup", "0",
                 "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert (row["n"], row["message"], row["dtype"]) == (200, "lsh", "float32")
    assert row["peak_bytes"] > 0 and row["step_s"] > 0 and row["step_cpu_s"] >= 0
