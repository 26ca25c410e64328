"""Graph store: one .npz per graph (event or section), plus summary.json for a directory.

    save_graph(hit_graph, "graphs/event000001000.npz")
    hg = load_graph("graphs/event000001000.npz")          # HitGraph, numpy GraphsTuple inside
    summary = build_graph_dir("events/", "graphs/", config, workers=2)

File layout (all numpy arrays): nodes [N, F], edges [E, G], senders, receivers [E], y, edge_pt [E],
hit_id, particle_id, layer [N], event_id, section (scalars), format, node_features, edge_features,
and edge_mask [E] only for graphs that have one (exact sections).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import jraph
import numpy as np

from gnntrack.config import config_to_dict
from gnntrack.errors import InputError
from gnntrack.graphs.build import build_event, count_event_layer_pairs, prepare
from gnntrack.graphs.config import event_parts
from gnntrack.graphs.layer_map import learned_layer_pairs, load_layer_map, save_layer_map
from gnntrack.graphs.report import merge_stats, summarize
from gnntrack.graphs.types import HitGraph
from gnntrack.io.atomic import atomic_path, write_json_atomic
from gnntrack.io.trackml import list_event_prefixes, read_event
from gnntrack.pool import map_jobs

GRAPH_FORMAT = "gnntrack.hitgraph/1"
SUMMARY_NAME = "summary.json"
LAYER_MAP_NAME = "layer_map.json"
_REQUIRED = ("nodes", "edges", "senders", "receivers", "y", "edge_pt", "hit_id", "particle_id", "layer",
             "event_id", "section")


def graph_file_name(event_id: int, section: int = -1) -> str:
    """`event000001000.npz`, or `event000001000_s003.npz` for a section."""
    base = f"event{int(event_id):09d}"
    return f"{base}.npz" if section < 0 else f"{base}_s{int(section):03d}.npz"


def save_graph(hit_graph: HitGraph, path: str | os.PathLike, *, compress: bool = False,
               node_features=(), edge_features=()) -> Path:
    """Writes one HitGraph to `path` (.npz) atomically; returns the path."""
    path = Path(path)
    g = hit_graph.graph
    arrays = dict(
        nodes=np.asarray(g.nodes, np.float32), edges=np.asarray(g.edges, np.float32),
        senders=np.asarray(g.senders, np.int32), receivers=np.asarray(g.receivers, np.int32),
        y=np.asarray(hit_graph.y, np.float32), edge_pt=np.asarray(hit_graph.edge_pt, np.float32),
        hit_id=np.asarray(hit_graph.hit_id, np.int64), particle_id=np.asarray(hit_graph.particle_id, np.int64),
        layer=np.asarray(hit_graph.layer, np.int32), event_id=np.int64(hit_graph.event_id),
        section=np.int64(hit_graph.section), format=np.str_(GRAPH_FORMAT),
        node_features=np.array(list(node_features), dtype=np.str_),
        edge_features=np.array(list(edge_features), dtype=np.str_))
    if hit_graph.edge_mask is not None:
        arrays["edge_mask"] = np.asarray(hit_graph.edge_mask, bool)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:  # a file object: numpy must not append its own suffix
            (np.savez_compressed if compress else np.savez)(f, **arrays)
    return path


def load_graph(path: str | os.PathLike) -> HitGraph:
    """Reads a graph file -> HitGraph (numpy GraphsTuple, n_node=[N], n_edge=[E]).

    Raises InputError naming the file when it is missing, unreadable or lacks an array.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"graph file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in _REQUIRED if k not in data.files]
            if missing:
                raise InputError(f"graph file {path} lacks array(s) {missing}")
            d = {k: data[k] for k in _REQUIRED}
            edge_mask = data["edge_mask"] if "edge_mask" in data.files else None
    except InputError:
        raise
    except Exception as exc:  # zipfile / pickle / value errors: name the file
        raise InputError(f"cannot read graph file {path}: {exc!r}") from exc
    n, e = len(d["hit_id"]), len(d["senders"])
    if (d["nodes"].shape[0] != n or d["edges"].shape[0] != e or len(d["receivers"]) != e or len(d["y"]) != e
            or (edge_mask is not None and len(edge_mask) != e)):
        raise InputError(f"graph file {path}: inconsistent array lengths (nodes {n}, edges {e})")
    graph = jraph.GraphsTuple(nodes=d["nodes"], edges=d["edges"], senders=d["senders"], receivers=d["receivers"],
                              globals=None, n_node=np.array([n], np.int32), n_edge=np.array([e], np.int32))
    return HitGraph(graph=graph, y=d["y"], hit_id=d["hit_id"], particle_id=d["particle_id"], layer=d["layer"],
                    edge_pt=d["edge_pt"], event_id=int(d["event_id"]), section=int(d["section"]),
                    edge_mask=edge_mask)


def list_graph_files(directory: str | os.PathLike) -> list[Path]:
    """Sorted graph files (*.npz) of a directory; InputError if it has none."""
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(f"graph directory not found: {directory}")
    files = sorted(p for p in directory.glob("event*.npz") if not p.name.startswith("."))
    if not files:
        raise InputError(f"no graph files (event*.npz) in {directory}")
    return files


def load_graph_dir(directory: str | os.PathLike, limit: int | None = None) -> list[HitGraph]:
    """All graphs of a directory, in file-name order (at most `limit`)."""
    return [load_graph(p) for p in list_graph_files(directory)[:limit]]


# ------------------------------------------------------------------------------- directory builder

def _read(prefix, config):
    return read_event(prefix, parts=event_parts(config))


def _build_one(job) -> tuple[list[str], dict]:
    """Worker: read one event, build, save its graph file(s). Returns (file names, stats)."""
    prefix, out_dir, config, layers, layer_pairs = job
    event = _read(prefix, config)
    graphs, stats = build_event(event, config, layers, layer_pairs)
    names = []
    for g in graphs:
        name = graph_file_name(g.event_id, g.section)
        save_graph(g, Path(out_dir) / name, compress=bool(config.compress),
                   node_features=tuple(config.features.node), edge_features=tuple(config.features.edge))
        names.append(name)
    return names, stats


def learn_layer_map_from_events(prefixes, config, layers, out_path) -> np.ndarray:
    """Counts consecutive-hit layer transitions in the events' truth, writes the layer map JSON,
    and returns the learned pairs int32 [P, 2] (pairs seen >= config.layer_map_min_count times)."""
    from tqdm import tqdm

    counts = np.zeros((len(layers), len(layers)), np.int64)
    for prefix in tqdm(list(prefixes), desc="learn layer map", unit="event"):
        counts += count_event_layer_pairs(_read(prefix, config), config, layers)
    min_count = int(config.layer_map_min_count)
    save_layer_map(out_path, layers, counts, min_count=min_count,
                   meta={"events": len(prefixes), "selection": config.selection, "pt_min": float(config.pt_min)})
    return learned_layer_pairs(counts, min_count)


def build_graph_dir(input_dir, out_dir, config=None, workers: int = 1, *, layer_map: str | None = None,
                    learn_layer_map: int = 0, detector=None, limit: int | None = None,
                    progress: bool = True) -> dict:
    """Builds graphs for every event of `input_dir` into `out_dir` and writes `summary.json`.

    Args:
      config: graph config (default_graph_config() if None).
      workers: processes over events (1 = in this process).
      layer_map: a learned layer-map JSON to use instead of config.layer_pairs.
      learn_layer_map: learn the layer map from the first N events' truth first, save it as
        out_dir/layer_map.json and use it.
      limit: only the first `limit` events.

    Returns:
      the summary dict (also written): events, graphs, mean_nodes, mean_edges, efficiency, purity,
      seconds_per_event, by_pt_min, by_pt_bin, layer_pairs, config.
    """
    from tqdm import tqdm

    out_dir = Path(out_dir)
    prefixes = list(list_event_prefixes(input_dir))[:limit]
    if not prefixes:
        raise InputError(f"no events (event*-hits.csv[.gz]) in {input_dir}")
    config, layers, layer_pairs = prepare(config, detector, np.zeros((0, 2), np.int32))
    if learn_layer_map:
        out_dir.mkdir(parents=True, exist_ok=True)
        layer_pairs = learn_layer_map_from_events(prefixes[:learn_layer_map], config, layers,
                                                  out_dir / LAYER_MAP_NAME)
        source = str(out_dir / LAYER_MAP_NAME)
    elif layer_map:
        layer_pairs = load_layer_map(layer_map, layers)
        source = str(layer_map)
    else:
        _, _, layer_pairs = prepare(config, layers)
        source = config.layer_pairs
    if layer_map or learn_layer_map:
        mask = layers.selection_mask(config.selection)
        layer_pairs = layer_pairs[mask[layer_pairs[:, 0]] & mask[layer_pairs[:, 1]]]

    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(p, str(out_dir), config, layers, layer_pairs) for p in prefixes]
    start = time.perf_counter()
    bar = tqdm(total=len(jobs), desc="build graphs", unit="event", disable=not progress)
    results = map_jobs(_build_one, jobs, workers=workers, preload=["gnntrack.graphs.build", "gnntrack.io.trackml"],
                       on_result=lambda _: bar.update())
    bar.close()
    seconds = time.perf_counter() - start
    files = [name for names, _ in results for name in names]
    summary = summarize(merge_stats(s for _, s in results), seconds=seconds, n_graphs=len(files))
    summary.update(
        input_dir=str(input_dir), workers=int(workers),
        seconds_per_event_note="wall time / events (with workers > 1: throughput, not latency)",
        layer_pairs_source=source,
        layer_pairs=[[layers.name(a), layers.name(b)] for a, b in layer_pairs],
        config=config_to_dict(config))
    write_json_atomic(out_dir / SUMMARY_NAME, summary)
    return summary

