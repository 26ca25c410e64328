"""Jets as graphs: one edgeless HitGraph per jet of its real constituents' features.

    graphs = jet_graphs(jets, n_constituents=80, features="particlenet7")

Each jet is one HitGraph: nodes = its real constituents' features float32 [n, F] (n <= P =
n_constituents, hardest first; 'particlenet7': ParticleNet's 7 features, 'p4': the first four of
them, (d eta, d phi, log pT, log E)), no edges (the models build their own kNN graphs),
graph_y = (label, weight) float32 [2], or (label, weight, teacher logit) [3] with a teacher;
event_id = the jet's index in the files' order. The 'jets' data source (`gnntrack.jets.source`)
and distillation (`gnntrack.jets.distill`) both build on it.
"""

from __future__ import annotations

import os
from pathlib import Path

import jraph
import ml_collections
import numpy as np

from gnntrack.errors import ConfigError
from gnntrack.graphs.types import HitGraph
from gnntrack.jets.formats import concatenate_jets, read_jets
from gnntrack.jets.preprocess import particlenet_features
from gnntrack.jets.types import JetArrays

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
