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


def test_fast_path_stays_ahead_of_the_reference(capsys):
    """The guard itself, at a CI size with generous ratio bounds: measured on the 2-core CI kind of
    machine, fast/reference is 1.6-1.75x (train) and 1.55-1.9x (inference) here, so a silent
    fall-back to the reference formulation (ratio ~1.0) fails. Ratios are measured back to back;
    a second attempt absorbs one noisy measurement on a busy machine."""
    spec = importlib.util.spec_from_file_location("bench_regression", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    args = ["--nodes", "2000", "--edges", "8000", "--hidden", "64", "--n-iters", "2", "--rounds", "3",
            "--min-train-speedup", "1.15", "--min-infer-speedup", "1.1"]
    codes = []
    for _ in range(2):
        codes.append(module.main(args))
        if codes[-1] == 0:
            break
    out = capsys.readouterr().out
    assert codes[-1] == 0, out[-2000:]
