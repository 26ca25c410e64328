"""metrics.jsonl + TensorBoard writer: records, resume truncation, plot compatibility."""

import json
import math

from gnntrack.train.writers import MetricWriter, read_metrics, truncate_metrics


def test_records_and_tensorboard(tmp_path):
    with MetricWriter(tmp_path) as w:
        w.write({"step": 1, "loss": 0.7, "lr": 1e-3, "utilisation": 0.93})
        w.write({"step": 2, "val_f1": 0.5, "val_thresholds": {"0.5": {"f1": 0.5}}, "val_auc": math.nan})
    records = read_metrics(tmp_path / "metrics.jsonl")
    assert records[0] == {"step": 1, "loss": 0.7, "lr": 1e-3, "utilisation": 0.93}
    assert records[1]["val_thresholds"] == {"0.5": {"f1": 0.5}}
    assert math.isnan(records[1]["val_auc"])
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_resume_drops_later_records_and_partial_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps({"step": s, "loss": 1.0 / s}) + "\n" for s in range(1, 6))
                    + '{"step": 6, "lo')  # a line cut short by a kill
    assert truncate_metrics(path, 3) == 2
    assert [r["step"] for r in read_metrics(path)] == [1, 2, 3]
    assert path.read_text().endswith("\n")
    with MetricWriter(tmp_path, tensorboard=False, resume_step=2) as w:
        w.write({"step": 3, "loss": 0.1})
    assert [(r["step"], r["loss"]) for r in read_metrics(path)] == [(1, 1.0), (2, 0.5), (3, 0.1)]


def test_fresh_run_starts_a_fresh_log(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 9}\n')
    with MetricWriter(tmp_path, tensorboard=False) as w:
        w.write({"step": 1, "loss": 2.0})
    assert read_metrics(tmp_path / "metrics.jsonl") == [{"step": 1, "loss": 2.0}]
