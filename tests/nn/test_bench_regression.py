"""scripts/bench_regression.py runs end to end at a tiny size (timing bound off: smoke only)."""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_regression.py"


def test_bench_regression_smoke(capsys):
    spec = importlib.util.spec_from_file_location("bench_regression", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    code = module.main(["--nodes", "60", "--edges", "200", "--hidden", "8", "--n-iters", "1",
                        "--rounds", "1", "--min-train-speedup", "0", "--min-infer-speedup", "0"])
    out = capsys.readouterr().out
    assert code == 0 and "OK: no regression" in out and "fast_train_ms" in out
