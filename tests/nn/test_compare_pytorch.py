"""scripts/compare_pytorch.py without PyTorch (an optional extra CI does not install): ours, the
FLOP floor and the bound from XLA matmuls at a tiny size."""

import json

from gnntrack.bench import model_flops
from gnntrack.nn.models import SegmentClassifier

from tests.scripts_loader import load_script


def test_compare_reports_floor_and_xla_matmul_bound(tmp_path, capsys):
    module = load_script("compare_pytorch")
    out_json = tmp_path / "compare.json"
    code = module.main(["--nodes", "60", "--edges", "200", "--hidden", "8", "--n-iters", "1",
                        "--steps", "1", "--warmup", "1", "--repeats", "1", "--floor-repeats", "1",
                        "--skip-torch", "--no-scaling", "--json", str(out_json)])
    assert code == 0
    ref = json.loads(out_json.read_text())["reference"]
    # Our projected arithmetic does fewer FLOPs than the naive formulation. (Matmul times are
    # only checked to be there: at this size they are microseconds, too noisy to compare.)
    assert 0 < ref["ours_flops"] < ref["naive_flops"]
    # Counted by the library's one function (which sees the fused kernels' work, unlike XLA's
    # cost analysis); ours also reports the forward work its backward pass recomputes.
    naive = model_flops(SegmentClassifier(hidden=8, n_iters=1), 60, 200, 3)
    assert ref["naive_flops"] == naive["train_step"]
    assert ref["ours_executed_flops"] >= ref["ours_flops"]
    assert ref["ours_infer_matmul_ms"] > 0 and ref["ours_train_matmul_ms"] > 0
    assert ref["floor_ms"] > 0 and ref["ours_over_floor"] > 0
    assert "bound for our arithmetic in XLA ops" in capsys.readouterr().out


def test_loglog_slope_reads_the_scaling_exponent():
    module = load_script("compare_pytorch")
    sizes = [1e4, 1e5, 1e6]
    assert abs(module.loglog_slope(sizes, [3 * s for s in sizes]) - 1.0) < 1e-9
    assert abs(module.loglog_slope(sizes, [s ** 1.5 for s in sizes]) - 1.5) < 1e-9
