"""Training data from `config.data`: simulate or read events, build graphs, cache, split by event.

    splits = prepare_data(config, workdir)
    splits.train, splits.val, splits.test          # lists of HitGraph
    splits.test_full                               # test events as whole graphs (or None)

Caching: simulated events go to `<cache>/events-<key>/` and graphs to
`<cache>/graphs-<key>/`, where `<key>` hashes everything that determines the content (simulation
config, seed and event count; graph config and the events' key or directory). A cache entry is
built in a temporary directory and renamed into place when complete, so an interrupted
preparation is redone rather than half-reused. The default cache is `<workdir>/data`.

Splits are by event, never by section: all graphs of one event land in one split. Events are
ordered by event id; the first `n_train` are for training, the next `n_val` for validation and
the next `n_test` for the final test.

Graphs without edges (an event or section with no hit in the selection, or none passing the
cuts) are left out of training, where they would fill a batch slot without loss, and kept in
validation and test, where they add nothing to the pooled edge metrics; both are logged as a
warning and listed in `info["empty_graphs"]` (result.json's `data`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import ml_collections
import numpy as np

from gnntrack.errors import InputError
from gnntrack.graphs.types import HitGraph
from gnntrack.testing import sign_graphs
from gnntrack.train.sources import registered_source

GRAPH_CACHE_VERSION = 1  # bump when the graph file format or builder changes incompatibly

log = logging.getLogger(__name__)


@dataclasses.dataclass
class DataSplits:
    """Graphs per split, all numpy `HitGraph`s (one per event or per event section).

    Attributes:
      train, val, test: graphs of the n_train / n_val / n_test events.
      test_full: the test events as single unsectioned graphs (None when the graphs are not
        sectioned, where it would equal `test`, or when no events are available to rebuild them).
      info: provenance (directories, event ids per split) for config.json / the report.
    """

    train: list[HitGraph]
    val: list[HitGraph]
    test: list[HitGraph]
    test_full: list[HitGraph] | None
    info: dict[str, Any]


def with_task_targets(splits: DataSplits, task) -> DataSplits:
    """`splits` with every graph's targets attached by a node or graph `task` (`gnntrack.tasks`)."""
    def attach(graphs):
        return None if graphs is None else [task.attach_targets(g) for g in graphs]

    return dataclasses.replace(splits, train=attach(splits.train), val=attach(splits.val),
                               test=attach(splits.test), test_full=attach(splits.test_full))


def config_key(*parts: Any) -> str:
    """Short stable hash of JSON-able parts (ConfigDicts allowed)."""
    def plain(x):
        if isinstance(x, ml_collections.ConfigDict):
            return json.loads(x.to_json_best_effort())
        return x

    blob = json.dumps([plain(p) for p in parts], sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def cache_root(data_config: ml_collections.ConfigDict, workdir: str | os.PathLike) -> Path:
    return Path(os.path.expanduser(data_config.cache_dir)) if data_config.cache_dir else Path(workdir) / "data"


def _build_cached(final: Path, build: Callable[[Path], Any]) -> Path:
    """Runs `build(tmp_dir)` and renames tmp_dir to `final`, unless `final` already exists."""
    if final.is_dir():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        build(tmp)
        try:
            os.replace(tmp, final)
        except OSError:  # another process finished the same entry first: keep theirs
            if not final.is_dir():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def n_events_needed(data_config: ml_collections.ConfigDict) -> int:
    return int(data_config.n_train) + int(data_config.n_val) + max(int(data_config.n_test), 0)


def simulate_events_cached(data_config: ml_collections.ConfigDict, root: Path, *, progress: bool = True
                           ) -> Path:
    """Directory of `n_train + n_val + n_test` simulated events (TrackML CSV), cached by key."""
    from gnntrack.detector.simulate import simulate_events

    n = n_events_needed(data_config)
    key = config_key("events", data_config.simulation, int(data_config.seed), n)
    return _build_cached(root / f"events-{key}",
                         lambda tmp: simulate_events(tmp, n, data_config.simulation, int(data_config.seed),
                                                     progress=progress))


def build_graphs_cached(events_dir: Path, graph_config: ml_collections.ConfigDict, root: Path,
                        events_key: str, *, workers: int = 1, limit: int | None = None,
                        progress: bool = True) -> Path:
    """Directory of graph files built from the first `limit` (None: all) events of `events_dir`,
    cached by key."""
    from gnntrack.graphs.store import build_graph_dir

    key = config_key("graphs", GRAPH_CACHE_VERSION, graph_config, events_key, limit)
    return _build_cached(root / f"graphs-{key}",
                         lambda tmp: build_graph_dir(events_dir, tmp, graph_config, workers=workers,
                                                     limit=limit, progress=progress))


def split_event_ids(event_ids: np.ndarray, n_train: int, n_val: int, n_test: int, where: str
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """First n_train / next n_val / next n_test distinct ids (sorted); n_test < 0 = the rest."""
    ids = np.unique(np.asarray(event_ids, dtype=np.int64))
    need = n_train + n_val + max(n_test, 0)
    if ids.size < need or ids.size < n_train + n_val + (1 if n_test < 0 else 0):
        raise InputError(f"{where}: {ids.size} events, but data.n_train + n_val + n_test = "
                         f"{n_train} + {n_val} + {n_test} need {need}")
    train = ids[:n_train]
    val = ids[n_train:n_train + n_val]
    test = ids[n_train + n_val:] if n_test < 0 else ids[n_train + n_val:need]
    return train, val, test


def _select(graphs: list[HitGraph], ids: np.ndarray) -> list[HitGraph]:
    wanted = set(int(i) for i in ids)
    chosen = [g for g in graphs if int(g.event_id) in wanted]
    return sorted(chosen, key=lambda g: (int(g.event_id), int(g.section)))


def graph_label(graph: HitGraph) -> str:
    """'event 1000', or 'event 1000 section 3' for a section."""
    return f"event {graph.event_id}" + (f" section {graph.section}" if graph.section >= 0 else "")


def _listing(names: list[str], most: int = 10) -> str:
    return ", ".join(names[:most]) + (", ..." if len(names) > most else "")


def _drop_empty_train_graphs(train: list[HitGraph], where: str) -> list[HitGraph]:
    """The training graphs that have edges; InputError when none has."""
    kept = [g for g in train if g.n_edges > 0]
    if not kept:
        raise InputError(f"{where}: every training graph ({len(train)}) has no edge "
                         f"({_listing([graph_label(g) for g in train])}); check config keys graph.selection "
                         "and the graph cuts against these events")
    return kept


def _warn_empty(split: str, empty: list[str], note: str) -> None:
    if empty:
        log.warning("%d %s graph(s) without edges%s: %s", len(empty), split, note, _listing(empty))


def _require_dir(path: str, key: str) -> Path:
    directory = Path(os.path.expanduser(path))
    if not directory.is_dir():
        raise InputError(f"data directory not found: {directory} (config key '{key}')")
    return directory


def full_event_graphs(events_dir: Path, event_ids: np.ndarray, graph_config: ml_collections.ConfigDict
                       ) -> list[HitGraph]:
    """The events `event_ids` of `events_dir` as single unsectioned graphs (in memory; few events:
    the test events of a sectioned run, the training events of a history table)."""
    from gnntrack.graphs.build import build_event_graphs
    from gnntrack.io.event import event_prefix_name
    from gnntrack.io.trackml import read_event

    full_config = ml_collections.ConfigDict(graph_config.to_dict())
    full_config.n_phi_sections = 1
    full_config.n_eta_sections = 1
    full_config.exact_sections = 0
    graphs = []
    for event_id in event_ids:
        event = read_event(events_dir / event_prefix_name(int(event_id)))
        graphs.extend(build_event_graphs(event, full_config))
    return graphs


def prepare_data(config: ml_collections.ConfigDict, workdir: str | os.PathLike, *, progress: bool = True
                 ) -> DataSplits:
    """Graphs for training, validation and test as `config.data` describes (cached on disk).

    Raises InputError for a missing input directory or too few events.
    """
    from gnntrack.graphs.store import load_graph_dir

    data = config.data
    plugin = registered_source(data.source)
    if plugin is not None:
        return plugin.prepare(config, workdir, progress=progress)
    if data.source == "sign_graphs":  # synthetic, made in memory: nothing to cache
        graphs = sign_graphs(n_events_needed(data), seed=int(data.seed))
        n_train, n_val = int(data.n_train), int(data.n_val)
        return DataSplits(train=graphs[:n_train], val=graphs[n_train:n_train + n_val],
                          test=graphs[n_train + n_val:], test_full=None,
                          info={"source": "sign_graphs", "seed": int(data.seed)})
    root = cache_root(data, workdir)
    events_dir: Path | None = None
    if data.source == "graphs":
        graphs_dir = _require_dir(data.input_dir, "data.input_dir")
        events_key = None
    else:
        if data.source == "simulate":
            events_dir = simulate_events_cached(data, root, progress=progress)
            events_key = events_dir.name
        else:
            events_dir = _require_dir(data.input_dir, "data.input_dir").absolute()
            events_key = str(events_dir)
        limit = n_events_needed(data) if int(data.n_test) >= 0 else None
        graphs_dir = build_graphs_cached(events_dir, config.graph, root, events_key, workers=int(data.workers),
                                         limit=limit, progress=progress)
    graphs = load_graph_dir(graphs_dir)
    if not graphs:
        raise InputError(f"no graphs found in {graphs_dir}")
    where = str(graphs_dir)
    train_ids, val_ids, test_ids = split_event_ids(
        np.array([g.event_id for g in graphs]), int(data.n_train), int(data.n_val), int(data.n_test), where)
    sectioned = (int(config.graph.n_phi_sections) * int(config.graph.n_eta_sections) > 1
                 or int(config.graph.get("exact_sections", 0)) > 0)
    train, val, test = _select(graphs, train_ids), _select(graphs, val_ids), _select(graphs, test_ids)
    empty = {name: [graph_label(g) for g in split if g.n_edges == 0]
             for name, split in (("train", train), ("val", val), ("test", test))}
    if config.batching.get("whole_events", False):
        # an event's sections stay whole, so each update still holds exactly one event; an empty
        # section adds no loss (the step's loss denominator is the event's)
        if not any(g.n_edges for g in train):
            train = _drop_empty_train_graphs(train, where)  # raises, naming the graphs
        _warn_empty("training", empty["train"], " kept (batching.whole_events)")
    else:
        train = _drop_empty_train_graphs(train, where)
        _warn_empty("training", empty["train"], " left out")
    _warn_empty("validation", empty["val"], "")
    _warn_empty("test", empty["test"], "")
    test_full = None
    if sectioned and events_dir is not None and config.eval.full_events and test_ids.size:
        test_full = full_event_graphs(events_dir, test_ids, config.graph)
    info = {
        "events_dir": str(events_dir) if events_dir is not None else None,
        "graphs_dir": str(graphs_dir),
        "train_events": train_ids.tolist(), "val_events": val_ids.tolist(), "test_events": test_ids.tolist(),
        "empty_graphs": empty,
    }
    return DataSplits(train=train, val=val, test=test, test_full=test_full, info=info)
