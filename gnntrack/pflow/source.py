"""Data source 'pflow': particle-flow events as graphs of elements without edges.

    config.data.source = "pflow"
    config.data.input_dir = "runs/pflow-mu50"   # from `gnntrack pflow simulate`; "" = simulate here
    config.data.pflow.pileup = 50.0             # only used to simulate (input_dir "")

Events are split in order: the first n_train for training, the next n_val, then n_test. With
no input_dir the n_train + n_val + n_test events are simulated (seed data.seed, data.workers
processes) into the data cache once, keyed by the settings.

Each event is one HitGraph: nodes = element features float32 [N, len(ELEMENT_FEATURES)], no
edges (senders / receivers empty, edges float32 [0, 1]), node_y = targets float32
[N, len(TARGET_COLUMNS)], particle_id = 1 + the element's main generator particle (0 for a noise
cluster; elements that share it come from one particle), hit_id 1 ... N.
"""

from __future__ import annotations

import os
from pathlib import Path

import jraph
import ml_collections
import numpy as np

from gnntrack.errors import InputError
from gnntrack.graphs.types import HitGraph
from gnntrack.pflow.config import default_pflow_config, validate_pflow_config
from gnntrack.pflow.store import PflowEvent, read_events
from gnntrack.train.data import (DataSplits, _build_cached, cache_root, config_key, n_events_needed,
                                 split_event_ids)
from gnntrack.train.sources import register_data_source, source_settings


def pflow_source_config() -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(dict(pileup=0.0))


def event_graph(event: PflowEvent) -> HitGraph:
    """The HitGraph of one particle-flow event (see the module docstring)."""
    n = len(event.elements)
    graph = jraph.GraphsTuple(nodes=event.elements.astype(np.float32), edges=np.zeros((0, 1), np.float32),
                              senders=np.zeros(0, np.int32), receivers=np.zeros(0, np.int32),
                              n_node=np.array([n], np.int32), n_edge=np.array([0], np.int32), globals=None)
    return HitGraph(graph=graph, y=np.zeros(0, np.float32), hit_id=np.arange(1, n + 1, dtype=np.int64),
                    particle_id=(event.particle + 1).astype(np.int64), layer=np.zeros(n, np.int32),
                    edge_pt=np.zeros(0, np.float32), event_id=int(event.event_id),
                    node_y=event.targets.astype(np.float32))


def simulated_events_cached(data: ml_collections.ConfigDict, pileup: float, root: Path, *,
                            progress: bool = True) -> Path:
    """Directory of the n_train + n_val + n_test events simulated at `pileup`, cached by key."""
    from gnntrack.pflow.simulate import simulate_to_directory

    config = default_pflow_config()
    config.pileup = float(pileup)
    validate_pflow_config(config)
    n = n_events_needed(data)
    key = config_key("pflow", config, int(data.seed), n)
    return _build_cached(root / f"pflow-{key}",
                         lambda tmp: simulate_to_directory(tmp, n, config, int(data.seed),
                                                           workers=int(data.workers), progress=progress))


@register_data_source("pflow", default_config=pflow_source_config)
def prepare_pflow(config: ml_collections.ConfigDict, workdir: str | os.PathLike, *, progress: bool = True
                  ) -> DataSplits:
    data = config.data
    if data.input_dir:
        events_dir = Path(os.path.expanduser(data.input_dir))
        if not events_dir.is_dir():
            raise InputError(f"config key 'data.input_dir': {events_dir} is not a directory; write "
                             f"events there with 'gnntrack pflow simulate --out {events_dir}'")
    else:
        events_dir = simulated_events_cached(data, source_settings(config).pileup, cache_root(data, workdir),
                                             progress=progress)
    limit = n_events_needed(data) if int(data.n_test) >= 0 else None
    graphs = [event_graph(e) for e in read_events(events_dir, limit)]
    train_ids, val_ids, test_ids = split_event_ids(np.array([g.event_id for g in graphs], np.int64),
                                                   int(data.n_train), int(data.n_val), int(data.n_test),
                                                   str(events_dir))
    by_id = {g.event_id: g for g in graphs}
    return DataSplits(train=[by_id[int(i)] for i in train_ids], val=[by_id[int(i)] for i in val_ids],
                      test=[by_id[int(i)] for i in test_ids], test_full=None,
                      info={"source": "pflow", "events_dir": str(events_dir), "train_events": train_ids.tolist(),
                            "val_events": val_ids.tolist(), "test_events": test_ids.tolist()})
