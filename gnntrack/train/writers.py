"""Run logs: `metrics.jsonl` (one JSON object per line) and TensorBoard event files.

metrics.jsonl records (all keys flat, so `gnntrack.report.plots.plot_training_curves` can read
them; the validation keys carry a `val_` prefix, test/full-event keys `test_`):

- train record, every `train.log_every` steps:
    step, epoch, loss (mean over the logging window), loss_min, loss_max, lr, grad_norm,
    utilisation (real / padded edges over the window), n_compiled_shapes, edges_per_s,
    graphs_per_s, steps_per_s, wall_s (seconds since the run (re)started, host clock)
- validation record, every `train.eval_every` steps and at the end:
    step, val_loss, val_accuracy, val_precision, val_recall, val_f1, val_auc,
    n_val_edges, n_val_true, val_thresholds ({"0.5": {precision, recall, ...}, ...}), eval_s
- final test records (held-out events; `test_full_*` on unsectioned events) at the last step.

On resume, records with a step beyond the restored checkpoint are dropped first (they belong to
steps that will be recomputed), and so are the final test records (a resumed run writes them again
at its end), so the file reads as one uninterrupted run.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from gnntrack.io.atomic import write_text_atomic

METRICS_FILE_NAME = "metrics.jsonl"
TENSORBOARD_DIR_NAME = "tensorboard"


def _plain(value: Any) -> Any:
    """JSON-ready value: numpy scalars -> python; non-finite floats kept as NaN/Infinity tokens."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


def read_metrics(path: str | os.PathLike) -> list[dict[str, Any]]:
    """All complete records of a metrics.jsonl (a truncated last line is skipped)."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut short by a killed run
    return records


def truncate_metrics(path: str | os.PathLike, last_step: int) -> int:
    """Drops records with step > last_step and the test records (atomic rewrite); returns how
    many were dropped."""
    path = Path(path)
    records = read_metrics(path)
    kept = [r for r in records if int(r.get("step", 0)) <= last_step and not any(k.startswith("test_") for k in r)]
    if path.exists() and (len(kept) != len(records) or not _ends_clean(path)):
        write_text_atomic(path, "".join(json.dumps(r) + "\n" for r in kept))
    return len(records) - len(kept)


def _ends_clean(path: Path) -> bool:
    data = path.read_bytes()
    return not data or data.endswith(b"\n")


class MetricWriter:
    """Appends metric records to `<workdir>/metrics.jsonl` and scalars to TensorBoard.

    Args:
      workdir: the run directory.
      tensorboard: also write TensorBoard events under `<workdir>/tensorboard/`.
      resume_step: when resuming from a checkpoint at this step, later records are dropped
        first (metrics.jsonl) and TensorBoard is told to purge them.
    """

    def __init__(self, workdir: str | os.PathLike, *, tensorboard: bool = True,
                 resume_step: int | None = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.path = self.workdir / METRICS_FILE_NAME
        if resume_step is not None:
            truncate_metrics(self.path, resume_step)
        elif self.path.exists():
            self.path.unlink()  # a fresh run starts a fresh log
        self._file = open(self.path, "a", encoding="utf-8")
        self._tb = None
        if tensorboard:
            from tensorboardX import SummaryWriter

            purge = None if resume_step is None else int(resume_step) + 1
            self._tb = SummaryWriter(logdir=str(self.workdir / TENSORBOARD_DIR_NAME), purge_step=purge,
                                     flush_secs=30)

    def write(self, record: Mapping[str, Any]) -> None:
        """Appends one record (must contain an integer 'step') and flushes it to disk.

        Numeric top-level values also go to TensorBoard: `val_x` as 'val/x', `test_x` as
        'test/x', the rest as 'train/<key>'.
        """
        record = _plain(dict(record))
        step = int(record["step"])
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        if self._tb is not None:
            for key, value in record.items():
                if key == "step" or isinstance(value, bool) or not isinstance(value, (int, float)):
                    continue
                if not math.isfinite(value):
                    continue
                self._tb.add_scalar(_tb_tag(key), value, global_step=step)

    def close(self, *, quiet: bool = False) -> None:
        """Closes both logs.

        Args:
          quiet: the run is ending on another error (a full disk, say), which is the one to report:
            a failing final flush is dropped, and TensorBoard's writers are shut anyway so that
            tensorboardX's exit hook does not retry the flush and print a traceback.
        """
        tb, self._tb = self._tb, None
        for close in (self._file.close, getattr(tb, "close", None)):
            if close is None:
                continue
            try:
                close()
            except OSError:
                if not quiet:
                    raise
                if tb is not None:
                    _shut_event_writers(tb)

    def __enter__(self) -> "MetricWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _shut_event_writers(tb) -> None:
    """Shuts a tensorboardX SummaryWriter's event files without writing what is still queued.

    tensorboardX has no public way to drop unwritten events, so this reaches into its event
    writers: their flush threads get a writer that discards, are stopped and joined (left running,
    they print a traceback when the interpreter closes their queue), and each event writer is
    marked closed so that tensorboardX's exit hook does not flush it again.
    """
    for file_writer in (getattr(tb, "all_writers", None) or {}).values():
        events = file_writer.event_writer
        worker = getattr(events, "_worker", None)
        if worker is not None and worker.is_alive():
            worker._record_writer = _DiscardingRecordWriter()  # noqa: SLF001
            worker.stop()
        events._closed = True  # noqa: SLF001
    tb.file_writer = tb.all_writers = None


class _DiscardingRecordWriter:
    def write_event(self, event) -> None:
        pass

    def flush(self) -> None:
        pass


def _tb_tag(key: str) -> str:
    for prefix in ("val_", "test_full_", "test_"):
        if key.startswith(prefix):
            return f"{prefix[:-1]}/{key[len(prefix):]}"
    return f"train/{key}"
