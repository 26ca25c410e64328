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

import ml_collections
import numpy as np

from gnntrack.jets.distill import cached_teacher_logits
from gnntrack.jets.formats import take_jets
from gnntrack.jets.graphs import check_settings, jet_graphs, jets_source_config, read_all, split_indices
from gnntrack.train.data import DataSplits, cache_root
from gnntrack.train.sources import register_data_source, source_settings

@register_data_source("jets", default_config=jets_source_config)
def prepare_jets(config: ml_collections.ConfigDict, workdir: str | os.PathLike, *, progress: bool = True
                 ) -> DataSplits:
    del progress
    keys = source_settings(config)
    check_settings(keys)
    jets, paths = read_all(keys.paths, int(keys.limit))
    teacher = None
    if keys.teacher_dir:
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
