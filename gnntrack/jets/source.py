"""Data source 'jets': jet files as graphs of their constituents, for the 'jet' task.

    config.data.source = "jets"
    config.data.jets.paths = ("runs/jets/top_towers_seed1.h5", "runs/jets/qcd_towers_seed1.h5")
    config.data.jets.fraction = 0.1          # of the training jets (the data-fraction study)
    config.data.jets.teacher_dir = "runs/particlenet_lite"   # distillation: the teacher's logits

Every file `gnntrack.jets.formats.read_jets` reads (generated or public layouts). The jets of all
files are split at random (seed) into test (test_fraction), validation (val_fraction) and
training; `fraction` keeps the first part of the training jets, so a smaller fraction is a subset
of a larger one. data.n_train / n_val / n_test are not used (the fractions decide).

Each jet is one HitGraph: nodes = its real constituents' features float32 [n, F] (n <= P =
n_constituents, hardest first; 'particlenet7': ParticleNet's 7 features, 'p4': the first four of
them, (d eta, d phi, log pT, log E)), no edges (the models build their own kNN graphs),
graph_y = (label, weight) float32 [2], or (label, weight, teacher logit) [3] with a teacher;
event_id = the jet's index in the files' order (files in `paths` order, jets in file order).
"""

from __future__ import annotations

import os
from pathlib import Path

import jraph
import ml_collections
import numpy as np

from gnntrack.errors import ConfigError
from gnntrack.graphs.types import HitGraph
from gnntrack.jets.formats import concatenate_jets, read_jets, take_jets
from gnntrack.jets.preprocess import particlenet_features
from gnntrack.jets.types import JetArrays
from gnntrack.train.data import DataSplits, cache_root
from gnntrack.train.sources import register_data_source, source_settings

FEATURES = {"particlenet7": 7, "p4": 4}  # name -> features per constituent (leading columns of the 7)


def jets_source_config() -> ml_collections.ConfigDict:
    """Keys of `data.jets` (see the module docstring); limit: jets read per file (0 = all)."""
    return ml_collections.ConfigDict(dict(
        paths=(), val_fraction=0.1, test_fraction=0.2, fraction=1.0, n_constituents=80,
        features="particlenet7", limit=0, teacher_dir="", seed=0))


def check_settings(keys: ml_collections.ConfigDict) -> None:
    """ConfigError naming the `data.jets` key that is out of range."""
    if not keys.paths or isinstance(keys.paths, str):
        raise ConfigError("config key 'data.jets.paths' must list jet files (a tuple of paths), "
                          f"got {keys.paths!r}; make some with 'gnntrack jets generate'")
    if keys.features not in FEATURES:
        raise ConfigError(f"config key 'data.jets.features' must be one of {', '.join(FEATURES)}, "
                          f"got {keys.features!r}")
    if not isinstance(keys.n_constituents, int) or keys.n_constituents < 1:
        raise ConfigError(f"config key 'data.jets.n_constituents' must be a positive integer, "
                          f"got {keys.n_constituents!r}")
    if not 0.0 < float(keys.fraction) <= 1.0:
        raise ConfigError(f"config key 'data.jets.fraction' must be in (0, 1], got {keys.fraction!r}")
    for key in ("val_fraction", "test_fraction"):
        if not 0.0 <= float(keys[key]) < 1.0:
            raise ConfigError(f"config key 'data.jets.{key}' must be in [0, 1), got {keys[key]!r}")
    if float(keys.val_fraction) + float(keys.test_fraction) >= 1.0:
        raise ConfigError("config keys 'data.jets.val_fraction' + 'data.jets.test_fraction' must "
                          "leave training jets (sum < 1)")


def jet_inputs(jets: JetArrays, n_constituents: int, features: str) -> tuple[np.ndarray, np.ndarray]:
    """(features float32 [J, P, F], mask bool [J, P]) of the jets' hardest P constituents."""
    x, mask = particlenet_features(jets, n_constituents)
    return x[..., :FEATURES[features]], mask


def jet_graph(features: np.ndarray, mask: np.ndarray, targets: np.ndarray, jet_id: int) -> HitGraph:
    """The HitGraph of one jet (see the module docstring): features [P, F], mask [P], targets [K]."""
    nodes = np.ascontiguousarray(features[mask], np.float32)
    n = len(nodes)
    graph = jraph.GraphsTuple(nodes=nodes, edges=np.zeros((0, 1), np.float32),
                              senders=np.zeros(0, np.int32), receivers=np.zeros(0, np.int32),
                              n_node=np.array([n], np.int32), n_edge=np.array([0], np.int32), globals=None)
    return HitGraph(graph=graph, y=np.zeros(0, np.float32), hit_id=np.arange(1, n + 1, dtype=np.int64),
                    particle_id=np.zeros(n, np.int64), layer=np.zeros(n, np.int32),
                    edge_pt=np.zeros(0, np.float32), event_id=int(jet_id),
                    graph_y=np.asarray(targets, np.float32))


def jet_graphs(jets: JetArrays, n_constituents: int, features: str, teacher_logits: np.ndarray | None = None,
               ids: np.ndarray | None = None) -> list[HitGraph]:
    """One HitGraph per jet; ids int [J] (default 0 ... J-1) become their event_id."""
    x, mask = jet_inputs(jets, n_constituents, features)
    columns = [jets.label.astype(np.float32), jets.weight.astype(np.float32)]
    if teacher_logits is not None:
        columns.append(np.asarray(teacher_logits, np.float32))
    targets = np.stack(columns, axis=1)
    ids = np.arange(len(jets)) if ids is None else ids
    return [jet_graph(x[i], mask[i], targets[i], int(ids[i])) for i in range(len(jets))]


def read_all(paths, limit: int = 0) -> tuple[JetArrays, list[str]]:
    """The jets of every file in `paths`, in order (first `limit` per file when > 0), and the
    resolved paths. Files may differ in their constituent count (cut or padded to the largest)."""
    resolved = [str(Path(os.path.expanduser(str(p))).resolve()) for p in paths]
    parts = [read_jets(p, limit=limit or None) for p in resolved]
    width = max(p.constituents.shape[1] for p in parts)
    padded = [JetArrays(np.pad(p.constituents, ((0, 0), (0, width - p.constituents.shape[1]), (0, 0))),
                        p.label, p.weight, p.jet) for p in parts]
    return concatenate_jets(padded), resolved


def split_indices(n_jets: int, val_fraction: float, test_fraction: float, fraction: float, seed: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, val, test) jet indices: a seeded permutation cut into test, val, then training
    jets, of which the first `fraction` are kept (nested: a smaller fraction is a subset)."""
    order = np.random.default_rng(seed).permutation(n_jets)
    n_test, n_val = int(round(test_fraction * n_jets)), int(round(val_fraction * n_jets))
    test, val, train = order[:n_test], order[n_test:n_test + n_val], order[n_test + n_val:]
    return train[:max(1, int(round(fraction * len(train))))], val, test


@register_data_source("jets", default_config=jets_source_config)
def prepare_jets(config: ml_collections.ConfigDict, workdir: str | os.PathLike, *, progress: bool = True
                 ) -> DataSplits:
    del progress
    keys = source_settings(config)
    check_settings(keys)
    jets, paths = read_all(keys.paths, int(keys.limit))
    teacher = None
    if keys.teacher_dir:
        # imported here: only a distillation run needs the checkpoint machinery
        from gnntrack.jets.distill import cached_teacher_logits

        teacher = cached_teacher_logits(keys.teacher_dir, jets, paths, int(keys.limit),
                                        cache_root(config.data, workdir))
    train, val, test = split_indices(len(jets), float(keys.val_fraction), float(keys.test_fraction),
                                     float(keys.fraction), int(keys.seed))
    def pick(index):
        index = np.sort(index)
        return jet_graphs(take_jets(jets, index), int(keys.n_constituents), keys.features,
                          None if teacher is None else teacher[index], ids=index)

    return DataSplits(train=pick(train), val=pick(val), test=pick(test), test_full=None,
                      info={"source": "jets", "paths": paths, "n_jets": len(jets), "n_train": len(train),
                            "n_val": len(val), "n_test": len(test),
                            "signal_fraction": float(np.mean(jets.label == 1)) if len(jets) else float("nan"),
                            "teacher_dir": str(keys.teacher_dir)})
