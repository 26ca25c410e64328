"""scripts/bench_regression.py runs end to end at a tiny size and reports its timings, ratios and
verdict in its documented format. Speed itself is never asserted: timings on a shared machine
belong to the benchmark command, not to the test suite."""

import json
import re

from tests.scripts_loader import load_script

TINY = ["--nodes", "60", "--edges", "200", "--hidden", "8", "--n-iters", "1", "--rounds", "1"]
REPORTED = ("fast_train_ms", "reference_train_ms", "fast_infer_ms", "reference_infer_ms",
            "train_speedup_vs_reference", "infer_speedup_vs_reference", "max_abs_logit_diff")


def test_bench_regression_reports_timings_ratios_and_verdict(capsys, monkeypatch):
    module = load_script("bench_regression")
    measured = []
    real_measure = module.measure
    monkeypatch.setattr(module, "measure", lambda *a: measured.append(real_measure(*a)) or measured[-1])
    assert module.main(TINY + ["--min-train-speedup", "0", "--min-infer-speedup", "0"]) == 0
    out = capsys.readouterr().out
    for key in REPORTED:  # one "  name  number" line each
        assert re.search(rf"^  {key} +[-+.e0-9]+$", out, re.M), (key, out)
    assert out.rstrip().endswith("OK: no regression")

    # The verdict and the JSON line, on the same measurement (no second timing run): a bound no
    # ratio can reach fails whatever the machine's speed, so this checks the exit path only.
    monkeypatch.setattr(module, "measure", lambda *a: measured[0])
    assert module.main(TINY + ["--json", "--min-train-speedup", "1e9", "--min-infer-speedup", "0"]) == 1
    out, err = capsys.readouterr()
    result = json.loads(out.splitlines()[0])
    assert set(REPORTED) <= set(result) and result["nodes"] == 60 and result["edges"] == 200
    assert "REGRESSION: train speed-up over reference" in err and "REGRESSION: inference" not in err
