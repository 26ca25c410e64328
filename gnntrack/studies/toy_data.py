"""Planes-toy data for the scaling studies (`study.toy`): generated once per study directory.

    base = apply_toy_data(base, study, workdir)   # base.data now reads W/data/toy-<key>/

The graphs are cached by a key of everything that determines them, so the points, repeats and
subprocesses of a study (and a resumed study) read the same files.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import ml_collections
import numpy as np

from gnntrack.detector.toy import default_toy_config, planes_detector, simulate_toy_event, validate_toy_config
from gnntrack.errors import ConfigError
from gnntrack.graphs.build import build_event_graphs
from gnntrack.graphs.store import graph_file_name, save_graph
from gnntrack.train.data import config_key


def default_toy_data_config() -> ml_collections.ConfigDict:
    """Planes-toy data for studies (`study.toy`): events -> graphs, written once under W/data.

    Keys:
      enabled: generate toy graphs and point the run config at them (data.source='graphs').
      n_events: events generated (split into data.n_train / n_val / n_test in event order).
      seed: generator seed.
      n_tracks_min, n_tracks_max: tracks per event drawn uniformly (varied graph sizes make the
        like-sized batching and the straggler ratio meaningful).
      planes: `gnntrack.detector.toy.default_toy_config()` (n_tracks is overridden per event).
      graph: graph-building overrides applied to the run's `graph` config (selection 'all').
    """
    planes = default_toy_config()
    planes.n_planes = 6
    planes.curved = True
    planes.curvature_max = 7.0e-4
    planes.noise_fraction = 0.1
    planes.sigma = 0.5
    return ml_collections.ConfigDict(dict(enabled=True, n_events=600, seed=7, n_tracks_min=2,
                                          n_tracks_max=6, planes=planes))


def toy_graph_dir(toy: ml_collections.ConfigDict, graph_config: ml_collections.ConfigDict, root: Path,
                  *, progress: bool = True) -> Path:
    """Directory of planes-toy graph files (one per event), built once and cached by a key of
    everything that determines it (`root/toy-<key>/`; a half-built one is redone)."""
    from tqdm import tqdm

    validate_toy_config(toy.planes, "study.toy.planes")
    if not 1 <= int(toy.n_tracks_min) <= int(toy.n_tracks_max):
        raise ConfigError("config keys 'study.toy.n_tracks_min/max' need 1 <= min <= max")
    key = config_key("toy", toy, graph_config)
    final = Path(root) / f"toy-{key}"
    if final.is_dir():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        rng = np.random.default_rng(int(toy.seed))
        planes = ml_collections.ConfigDict(toy.planes.to_dict())
        detector = planes_detector(planes)
        for event in tqdm(range(int(toy.n_events)), desc="toy graphs", unit="event", disable=not progress,
                          dynamic_ncols=True):
            planes.n_tracks = int(rng.integers(int(toy.n_tracks_min), int(toy.n_tracks_max) + 1))
            ev = simulate_toy_event(rng, planes, event_id=1000 + event)
            for g in build_event_graphs(ev, graph_config, detector=detector):
                save_graph(g, tmp / graph_file_name(g.event_id, g.section))
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def apply_toy_data(base: ml_collections.ConfigDict, study: ml_collections.ConfigDict, workdir: Path,
                   *, progress: bool = True) -> ml_collections.ConfigDict:
    """Generates the toy graphs (if enabled) and points `base.data` at them (a copy)."""
    base = ml_collections.ConfigDict(base.to_dict())
    if not study.toy.enabled:
        return base
    needed = int(base.data.n_train) + int(base.data.n_val) + max(int(base.data.n_test), 0)
    if int(study.toy.n_events) < needed:
        raise ConfigError(f"config key 'study.toy.n_events'={study.toy.n_events} is fewer than "
                          f"data.n_train + n_val + n_test = {needed}")
    graph_dir = toy_graph_dir(study.toy, base.graph, workdir / "data", progress=progress)
    base.data.source = "graphs"
    base.data.input_dir = str(graph_dir.resolve())
    return base
