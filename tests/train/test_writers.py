"""metrics.jsonl + TensorBoard writer: records, resume truncation, plot compatibility."""

import json
import math
import subprocess
import sys

import pytest

from gnntrack.train.writers import METRICS_FILE_NAME, MetricWriter, read_metrics, truncate_metrics


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


_FULL_DISK_SCRIPT = """
import errno, sys
from gnntrack.train.writers import MetricWriter

class FullDisk:  # stands in for the buffered event file on a full disk: writes buffer, flushes fail
    def write(self, data): pass
    def flush(self): raise OSError(errno.ENOSPC, "No space left on device")
    close = flush

writer = MetricWriter(sys.argv[1])
writer.write({"step": 1, "loss": 0.5})
for file_writer in writer._tb.all_writers.values():
    file_writer.event_writer._ev_writer._py_recordio_writer._writer = FullDisk()
writer.close(quiet=sys.argv[2] == "quiet")
"""


@pytest.mark.parametrize("mode", ["quiet", "loud"])
def test_closing_on_a_full_disk(tmp_path, mode):
    """A run that ends on another error closes its logs quietly: no traceback from TensorBoard's
    flush thread or exit hook after the one-line error. An ordinary close still raises."""
    proc = subprocess.run([sys.executable, "-c", _FULL_DISK_SCRIPT, str(tmp_path), mode],
                          capture_output=True, text=True, timeout=120)
    if mode == "quiet":
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    else:
        assert proc.returncode == 1 and "No space left on device" in proc.stderr
    assert read_metrics(tmp_path / METRICS_FILE_NAME)[0]["loss"] == 0.5
