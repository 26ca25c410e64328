"""Report plots: files are real PNGs, inputs with missing keys are tolerated, helpers are exact."""

import json

import numpy as np
import pytest

from gnntrack.errors import InputError
from gnntrack.report import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _write_jsonl(path, records, tail=""):
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + tail)
    return path


def _is_png(path):
    return path.exists() and path.read_bytes()[:8] == PNG_MAGIC


def test_rolling_envelope_matches_direct_computation():
    x = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0])
    mean, lo, hi = plots.rolling_envelope(x, 3)
    for i in range(x.size):
        w = x[max(0, i - 2): i + 1]
        assert mean[i] == pytest.approx(w.mean())
        assert lo[i] == w.min() and hi[i] == w.max()


def test_metric_series_sorts_and_last_duplicate_wins():
    recs = [{"step": 5, "loss": 1.0}, {"step": 1, "loss": 2.0}, {"step": 5, "loss": 0.5},
            {"step": 3}, {"loss": 9.0}, {"step": 7, "loss": None}, {"step": 8, "loss": float("nan")}]
    steps, vals = plots.metric_series(recs, "loss")
    np.testing.assert_array_equal(steps, [1, 5])
    np.testing.assert_array_equal(vals, [2.0, 0.5])


def test_training_curves_with_val_and_truncated_tail(tmp_path):
    recs = [{"step": s, "loss": 1.0 / (1 + s), "lr": 1e-3} for s in range(0, 200, 2)]
    recs += [{"step": s, "val_loss": 0.5 / (1 + s), "val_auc": 0.9, "val_f1": 0.8} for s in (0, 100, 198)]
    path = _write_jsonl(tmp_path / "metrics.jsonl", recs, tail='{"step": 200, "lo')
    out = plots.plot_training_curves(path, tmp_path / "curves.png")
    assert _is_png(out)
    assert not list(tmp_path.glob(".curves*"))  # no temporary left behind


@pytest.mark.parametrize("records", [
    [{"step": 1, "loss": 0.3}],                      # a single point
    [{"step": 1, "val_auc": 0.7}],                   # validation only, no train loss
    [{"foo": "bar"}],                                 # nothing usable
    [],                                               # empty file
])
def test_training_curves_tolerates_missing_keys(tmp_path, records):
    path = _write_jsonl(tmp_path / "m.jsonl", records)
    assert _is_png(plots.plot_training_curves(path, tmp_path / "c.png"))


def test_training_curves_bad_input(tmp_path):
    with pytest.raises(InputError, match="not found"):
        plots.plot_training_curves(tmp_path / "missing.jsonl", tmp_path / "c.png")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"step": 1, "loss": 1}\nnot json\n{"step": 2, "loss": 1}\n')
    with pytest.raises(InputError, match="bad.jsonl:2"):
        plots.plot_training_curves(bad, tmp_path / "c.png")


def test_plot_roc(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.random(5000) < 0.2
    scores = np.clip(rng.normal(0.3 + 0.4 * labels, 0.2), 0, 1)
    assert _is_png(plots.plot_roc(scores, labels, tmp_path / "roc.png"))
    assert _is_png(plots.plot_roc(scores, np.zeros_like(labels), tmp_path / "roc1.png"))  # one class
    with pytest.raises(InputError, match="shape"):
        plots.plot_roc(scores, labels[:10], tmp_path / "roc2.png")


def test_training_curves_uses_logged_interval_min_max(tmp_path, monkeypatch):
    recs = [{"step": s, "loss": 0.5, "loss_min": 0.4, "loss_max": 0.7} for s in range(10, 100, 10)]
    path = _write_jsonl(tmp_path / "m.jsonl", recs)
    seen = {}
    import matplotlib.axes

    original = matplotlib.axes.Axes.fill_between

    def spy(self, x, y1, y2=0, **kw):
        seen["band"] = (np.asarray(y1).copy(), np.asarray(y2).copy())
        return original(self, x, y1, y2, **kw)

    monkeypatch.setattr(matplotlib.axes.Axes, "fill_between", spy)
    assert _is_png(plots.plot_training_curves(path, tmp_path / "c.png"))
    np.testing.assert_allclose(seen["band"][0], 0.4)
    np.testing.assert_allclose(seen["band"][1], 0.7)
