"""Segment training with a history table and stale-embedding dropout (GST, Cao et al. 2023,
arXiv:2305.12322), adapted to edge classification on the segments of one huge graph.

Training steps on *segments*: exact sections with a one-hop halo (`graph.exact_sections`,
`graph.section_hops = 1`). A node of a segment whose every edge lies in the segment is *fresh*:
the model computes its state. A node with an edge outside the segment (the halo ring) is
*stale*: at every iteration t its state is read from the history table, the state the model gave
it at iteration t on the whole graph, so a fresh node's messages from outside its segment come
from the table instead of from a halo n_iters hops deep. No gradient flows into the table, and
in training each stale node is dropped from its neighbours' messages with probability
`model.history_dropout` (stale-embedding dropout).

The table holds, for every node of every training event, its states of all n_iters + 1
iterations, refreshed from the current parameters by one forward pass over the whole training
events at the start of every epoch (inference fits in memory where training does not); during an
epoch it is stale by at most that epoch's updates. (GST writes a segment's table entries when it
trains that segment; an epoch-wise refresh keeps the order of the data a pure function of
(seed, epoch) and the parameters at the epoch's start.) A resumed run refreshes the table from
the restored parameters.

Segments carry the table in their node features (`with_history`: [raw | stale flag | states]),
which `SegmentClassifier(history=True)` reads; graphs of any other width (validation, test and
`gnntrack evaluate` on whole graphs) are plain inputs to the same model.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable, Sequence

import jraph
import ml_collections
import numpy as np

from gnntrack.errors import ConfigError, InputError
from gnntrack.graphs.types import HitGraph
from gnntrack.train.data import DataSplits, full_event_graphs


def node_degrees(graph: HitGraph) -> np.ndarray:
    """int64 [N]: edges at each node (in or out)."""
    n = graph.n_nodes
    return (np.bincount(graph.graph.senders, minlength=n) + np.bincount(graph.graph.receivers, minlength=n))


def stale_nodes(section: HitGraph, full_rows: np.ndarray, full_degree: np.ndarray) -> np.ndarray:
    """bool [n]: the section's nodes that have an edge outside it (full_rows: each node's row in
    its event's whole graph; full_degree: the whole graph's node degrees)."""
    return node_degrees(section) < full_degree[full_rows]


def with_history(section: HitGraph, stale: np.ndarray, states: np.ndarray) -> HitGraph:
    """The section with nodes [raw F | stale flag | states (n_iters + 1) x D] (float32), states
    float [n_iters + 1, n, D] of its nodes (`gnntrack.nn.segment_classifier.split_history`)."""
    raw = np.asarray(section.graph.nodes, np.float32)
    n = raw.shape[0]
    table = np.transpose(np.asarray(states, np.float32), (1, 0, 2)).reshape(n, -1)
    nodes = np.concatenate([raw, stale.astype(np.float32)[:, None], table], axis=1)
    return dataclasses.replace(section, graph=section.graph._replace(nodes=nodes))


def _rows_in(full: HitGraph, section: HitGraph) -> np.ndarray:
    """int64 [n]: row of each of the section's nodes in its event's whole graph (by hit id)."""
    order = np.argsort(full.hit_id, kind="stable")
    pos = np.searchsorted(full.hit_id, section.hit_id, sorter=order)
    pos = np.minimum(pos, len(order) - 1)
    rows = order[pos]
    if not np.array_equal(full.hit_id[rows], section.hit_id):
        raise InputError(f"event {section.event_id} section {section.section}: hits missing from the "
                         "event's whole graph; the history table needs every segment node in it")
    return rows


@dataclasses.dataclass
class HistoryTable:
    """The training segments and, per training event, its node states on the whole graph.

    Attributes:
      segments: the training sections (raw node features).
      full: the training events' whole graphs, by event id.
      rows, stale: per segment, its nodes' rows in the whole graph and their stale flags.
      states: per event id, float32 [n_iters + 1, N, D] (zeros before the first refresh).
    """

    segments: list[HitGraph]
    full: dict[int, HitGraph]
    rows: list[np.ndarray]
    stale: list[np.ndarray]
    states: dict[int, np.ndarray]

    @classmethod
    def build(cls, segments: Sequence[HitGraph], full_graphs: Sequence[HitGraph], n_iters: int,
              state_width: int) -> "HistoryTable":
        """Tables for `segments` (all from the events of `full_graphs`); D = state_width."""
        full = {int(g.event_id): g for g in full_graphs}
        missing = sorted({int(s.event_id) for s in segments} - set(full))
        if missing:
            raise InputError(f"the history table has no whole graph of training event(s) {missing}")
        degrees = {e: node_degrees(g) for e, g in full.items()}
        rows = [_rows_in(full[int(s.event_id)], s) for s in segments]
        stale = [stale_nodes(s, r, degrees[int(s.event_id)]) for s, r in zip(segments, rows)]
        states = {e: np.zeros((n_iters + 1, g.n_nodes, state_width), np.float32) for e, g in full.items()}
        return cls(list(segments), full, rows, stale, states)

    def refresh(self, node_states: Callable[[HitGraph], np.ndarray]) -> None:
        """Recomputes every event's states with node_states(whole graph) -> [n_iters + 1, N, D]."""
        for event_id, graph in self.full.items():
            self.states[event_id] = np.asarray(node_states(graph), np.float32)

    def graphs(self) -> list[HitGraph]:
        """The segments with the current table in their node features."""
        return [with_history(s, stale, self.states[int(s.event_id)][:, rows])
                for s, rows, stale in zip(self.segments, self.rows, self.stale)]

    def stale_fraction(self) -> float:
        """Stale nodes over all segment nodes (how much of each step comes from the table)."""
        return float(sum(s.sum() for s in self.stale) / max(sum(s.size for s in self.stale), 1))


def padded_state_fn(apply_states: Callable, graphs: Sequence[HitGraph]) -> Callable[[HitGraph], np.ndarray]:
    """node_states(graph) -> [n_iters + 1, N, D] for `refresh`: every graph padded to one shape
    (the largest of `graphs`, one compilation; padding never changes real nodes' states).
    apply_states(GraphsTuple) -> [n_iters + 1, N_pad, D]."""
    n_pad = max(g.n_nodes for g in graphs) + 1
    e_pad = max(g.n_edges for g in graphs)

    def node_states(graph: HitGraph) -> np.ndarray:
        padded = jraph.pad_with_graphs(graph.graph._replace(globals=None), n_pad, e_pad, 2)
        padded = padded._replace(senders=padded.senders.astype(np.int32),
                                 receivers=padded.receivers.astype(np.int32))
        return np.asarray(apply_states(padded))[:, :graph.n_nodes]

    return node_states


def history_table_for(config: ml_collections.ConfigDict, splits: DataSplits) -> HistoryTable:
    """The table of a run with model.history: its training segments and their events' whole
    graphs (rebuilt from data.input_dir). ConfigError for settings it cannot serve."""
    if int(config.graph.get("exact_sections", 0)) < 1:
        raise ConfigError("model.history trains on segments: set graph.exact_sections (and "
                          "graph.section_hops=1, the halo the table stands in for)")
    if float(config.data.particle_fraction):
        raise ConfigError("model.history and data.particle_fraction are two ways to train on parts of an "
                          "event: set data.particle_fraction=0")
    events_dir = splits.info.get("events_dir")
    if not events_dir:
        raise ConfigError("model.history needs the events themselves (data.source 'events' or 'simulate') "
                          "to build the whole training graphs")
    full = full_event_graphs(Path(events_dir), np.asarray(splits.info["train_events"]), config.graph)
    n_features = int(full[0].graph.nodes.shape[1])
    return HistoryTable.build(splits.train, full, int(config.model.n_iters),
                              int(config.model.hidden) + n_features)
