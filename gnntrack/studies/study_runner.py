"""Machinery shared by the scaling studies (batch size, data size, devices): the `study` config
section, the study directory, points with repeat seeds that resume, and table formatting.

A study directory W holds config.json (the study config as run), data/ (toy graphs and the
shared data cache), one directory per point with one run directory per repeat seed, and a
point.json per point written last and atomically: a resumed study reads finished points back
(`finished_point`) and reruns nothing in them; a run directory with a result.json is read back
by the study's train function (resume=True), so an interrupted point redoes only its
unfinished repeats.
"""

from __future__ import annotations

import copy
import json
import math
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import ml_collections
import numpy as np

from gnntrack.config import save_config
from gnntrack.errors import ConfigError
from gnntrack.io.atomic import write_json_atomic
from gnntrack.keys import check_known_keys
from gnntrack.studies.toy_data import apply_toy_data

POINT_FILE = "point.json"

# train function of a study: (run config, run dir, report_fn=, resume=) -> result dict
TrainFn = Callable[..., dict]


def split_study_section(config: ml_collections.ConfigDict, defaults: Callable[[], ml_collections.ConfigDict]
                        ) -> tuple[ml_collections.ConfigDict, ml_collections.ConfigDict]:
    """(base run config: a copy of `config` without `study`, the `study` section merged over
    `defaults()`). ConfigError when the section is missing or holds a key `defaults()` lacks;
    each study then checks its own values."""
    if "study" not in config:
        raise ConfigError(f"the experiment config has no 'study' section (see "
                          f"{defaults.__module__}.{defaults.__name__}())")
    study = ml_collections.ConfigDict(config.study.to_dict())
    check_known_keys(study, defaults(), where="study")
    merged = defaults()
    _merge(merged, study)
    base = ml_collections.ConfigDict({k: copy.deepcopy(config[k].to_dict() if isinstance(
        config[k], ml_collections.ConfigDict) else config[k]) for k in config.keys() if k != "study"})
    return base, merged

def _merge(dst: ml_collections.ConfigDict, src: ml_collections.ConfigDict) -> None:
    for key in src.keys():
        if isinstance(src[key], ml_collections.ConfigDict) and isinstance(dst.get(key), ml_collections.ConfigDict):
            _merge(dst[key], src[key])
        else:
            with dst.ignore_type():
                dst[key] = src[key]

def clean(d: Mapping[str, Any]) -> dict:
    """JSON-safe copy: numpy scalars -> Python, non-finite floats -> None."""
    out = {}
    for k, v in d.items():
        if isinstance(v, (np.floating, float)):
            v = float(v)
            out[k] = v if math.isfinite(v) else None
        elif isinstance(v, np.integer):
            out[k] = int(v)
        elif isinstance(v, np.bool_):
            out[k] = bool(v)
        else:
            out[k] = v
    return out

def fmt(v, digits=3) -> str:
    """A table cell: floats to `digits` significant digits, None / non-finite as an en dash."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def prepare_study(config: ml_collections.ConfigDict, study: ml_collections.ConfigDict,
                  base: ml_collections.ConfigDict, workdir: Path, *, progress: bool = True
                  ) -> ml_collections.ConfigDict:
    """Saves the study config into `workdir` and returns the base run config of its points:
    toy data generated (if enabled), one data cache shared by every run of the study, no
    per-run progress bars or TensorBoard files."""
    workdir.mkdir(parents=True, exist_ok=True)
    save_config(config, workdir)
    base = apply_toy_data(base, study, workdir, progress=progress)
    if not base.data.cache_dir:
        base.data.cache_dir = str((workdir / "data").resolve())  # share one data cache across runs
    base.train.progress = False
    base.train.tensorboard = False
    return base


def finished_point(point_dir: Path) -> dict | None:
    """The point.json of a finished point, or None when the point still has to run."""
    done = Path(point_dir) / POINT_FILE
    return json.loads(done.read_text()) if done.exists() else None


def write_point(point_dir: Path, point: Mapping[str, Any]) -> dict:
    """Marks a point finished (point.json, atomically: written last, read back on resume)."""
    write_json_atomic(Path(point_dir) / POINT_FILE, dict(point))
    return dict(point)


def run_repeats(train_fn: TrainFn, config: ml_collections.ConfigDict, seeds: Iterable[int],
                point_dir: Path) -> list[dict]:
    """Trains `config` once per seed into point_dir/seed<k> (a finished run is read back)."""
    results = []
    for seed in seeds:
        run_cfg = ml_collections.ConfigDict(config.to_dict())
        run_cfg.seed = int(seed)
        results.append(train_fn(run_cfg, str(Path(point_dir) / f"seed{int(seed)}"), report_fn=None, resume=True))
    return results


def load_average() -> list[float] | None:
    """The host's 1/5/15-minute load average (provenance of timings), None where unknown."""
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None
