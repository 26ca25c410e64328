"""Host-side batching: bucket ladder, padding, like-sized dealing across devices.

Everything here is numpy on the host; the device only ever sees a few static shapes.

    ladder = make_ladder(train_graphs, config, n_devices)          # once; store ladder.to_dict()
    for batch in batch_iterator(train_graphs, config, n_devices, ladder=ladder, seed=0, epoch=e):
        state, metrics = p_train_step(state, batch)                # arrays are [D, ...]

A *step* takes `config.graphs_per_step` graphs (the global batch, in graphs) in an order fixed by
(seed, epoch), deals them over the devices so every device gets a similar real edge count (largest
first, each to the least loaded device that still has room), and pads every device's batch to the
SAME bucket: the smallest rung of the ladder that fits the largest device. Bucket sizes are
multiples of `node_multiple` nodes / `edge_multiple` edges; the ladder (<= max_buckets rungs,
'optimal' = least padding on the sampled steps, or 'geometric' with ratio <= max_ratio) is fitted
to the step sizes the data produce, with the top rung covering the largest possible device batch,
so no new shape appears after the first epoch. A device batch larger than every rung (e.g. data
the ladder was not built from) gets a new rung (logged) or an InputError: never truncation.

Padding follows jraph's layout (`jraph.batch_np` + `jraph.pad_with_graphs`): real graphs first,
then one padding graph holding all padding nodes/edges (padding edges join the first padding node
to itself), then empty graphs; `make_batch` writes that layout directly into [D, ...] arrays
(tested equal to the jraph path). Masks mark real nodes / edges / graphs.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import queue
import threading
from typing import Callable, Iterable, Iterator, Sequence

import flax.struct
import jraph
import ml_collections
import numpy as np

from gnntrack.errors import ConfigError, InputError
from gnntrack.graphs.types import HitGraph

log = logging.getLogger(__name__)

OVERSIZE_POLICIES = ("new_bucket", "error")
LADDERS = ("optimal", "geometric")
LOSS_NORMALISERS = ("step", "update")


def default_batching_config() -> ml_collections.ConfigDict:
    """Batching defaults (the `batching` sub-config of an experiment).

    Keys:
      graphs_per_step: global batch size in graphs per optimizer step, split over the devices
        (devices may differ by one graph when it does not divide evenly).
      sort_window: 0 = steps are random draws; k > 1 = steps take graphs of similar size
        (shuffled windows of k steps sorted by size; see `epoch_steps`). Use it when a device
        gets only one or two graphs per step, where random draws pad a lot.
      ladder: 'optimal' (rungs minimising padding of the sampled steps) or 'geometric'
        (ratio between min_ratio and max_ratio); see `make_ladder`.
      max_buckets: most rungs of a data-built ladder (= compiled shapes per step function).
      max_ratio / min_ratio: bounds on the geometric ratio between neighbouring rungs; the ratio
        is the smallest that covers the data's per-step size range in `max_buckets` rungs.
      node_multiple / edge_multiple: bucket sizes are rounded up to these.
      node_slack: headroom on a rung's node capacity over the largest node count seen for it.
      buckets: explicit ladder as ((n_node, n_edge), ...); empty = build from the data.
      oversize: a device batch larger than the largest bucket: 'new_bucket' (extend the ladder,
        logged; one more compiled shape) or 'error' (InputError). Never truncated.
      ladder_sample_epochs: epochs of dealing simulated to measure the per-device size range.
      shuffle: shuffle the graph order every epoch (from seed and epoch).
      drop_remainder: skip the last incomplete step of an epoch (training); evaluation always
        keeps it.
      precompile: compile the train step for every rung before the first step (on throwaway
        all-padding batches), so nothing compiles mid-run.
      whole_events: the epoch shuffles events instead of graphs, and an event's graphs (its
        sections, in section order) fill consecutive step slots. With graphs_per_step x
        optimizer.accumulation_steps = the sections per event, every optimizer update holds
        exactly one event.
      loss_normaliser: 'step' (each train step's loss is the mean over its own items) or 'update'
        (the mean over all items of the accumulation_steps steps that form one optimizer update:
        optax.MultiSteps then averages step gradients into the exact mean gradient over the
        update's items; edge task only). With whole_events and exact sections, 'update' makes
        each update the whole event's full-graph update.
    """
    c = ml_collections.ConfigDict()
    c.graphs_per_step = 8
    c.sort_window = 0
    c.ladder = "optimal"
    c.max_buckets = 8
    c.max_ratio = 1.25
    c.min_ratio = 1.05
    c.node_multiple = 8
    c.edge_multiple = 64
    c.node_slack = 1.05
    c.buckets = ()
    c.oversize = "new_bucket"
    c.ladder_sample_epochs = 4
    c.shuffle = True
    c.drop_remainder = True
    c.precompile = True
    c.whole_events = False
    c.loss_normaliser = "step"
    return c


def _round_up(x, multiple: int):
    """Rounds non-negative ints (scalars or arrays) up to a multiple."""
    return (np.asarray(x, dtype=np.int64) + multiple - 1) // multiple * multiple


@dataclasses.dataclass(frozen=True, order=True)
class Bucket:
    """One padded per-device size (ordered by edges, then nodes).

    Attributes:
      n_edge: padded edge count per device (multiple of edge_multiple).
      n_node: padded node count per device; always > real nodes (jraph's padding graph needs
        at least one node).
    """

    n_edge: int
    n_node: int


@dataclasses.dataclass
class BucketLadder:
    """The fixed set of padded sizes (rungs) a run compiles for.

    Attributes:
      buckets: rungs sorted by increasing n_edge (and n_node, which is non-decreasing).
      oversize: 'new_bucket' or 'error' (see `default_batching_config`).
      node_multiple, edge_multiple, max_ratio: used when a new rung has to be added.
      n_added: rungs added after construction because a batch did not fit (0 on typical data).
    """

    buckets: list[Bucket]
    oversize: str = "new_bucket"
    node_multiple: int = 8
    edge_multiple: int = 64
    max_ratio: float = 1.25
    n_added: int = 0

    def select(self, n_node: int, n_edge: int, *, what: str = "batch") -> Bucket:
        """The smallest rung with n_edge >= edges and n_node > nodes.

        Too large for every rung: with oversize='new_bucket' a rung is appended (logged
        warning), with 'error' an InputError names the sizes and the largest bucket.
        `what` names the offending batch (e.g. its graph ids) in messages.
        """
        for bucket in self.buckets:
            if bucket.n_edge >= n_edge and bucket.n_node > n_node:
                return bucket
        top = self.buckets[-1] if self.buckets else Bucket(0, 0)
        if self.oversize == "error":
            raise InputError(
                f"{what} has {n_node} nodes / {n_edge} edges per device, larger than the largest "
                f"bucket ({top.n_node} nodes / {top.n_edge} edges); set batching.oversize="
                f"'new_bucket', give larger batching.buckets, or build the ladder from this data")
        new = Bucket(n_edge=int(_round_up(max(n_edge, top.n_edge), self.edge_multiple)),
                     n_node=int(_round_up(max(n_node + 1, top.n_node), self.node_multiple)))
        self.buckets.append(new)
        self.buckets.sort()
        self.n_added += 1
        log.warning("bucket ladder extended for %s (%d nodes / %d edges per device): new bucket "
                    "%d nodes / %d edges (one more compiled shape; %d rungs now)",
                    what, n_node, n_edge, new.n_node, new.n_edge, len(self.buckets))
        return new

    def to_dict(self) -> dict:
        """JSON-friendly form (store it with checkpoints so a resumed run keeps its shapes)."""
        return {"buckets": [[b.n_node, b.n_edge] for b in self.buckets], "oversize": self.oversize,
                "node_multiple": self.node_multiple, "edge_multiple": self.edge_multiple,
                "max_ratio": self.max_ratio, "n_added": self.n_added}

    @classmethod
    def from_dict(cls, d: dict) -> "BucketLadder":
        return cls(buckets=sorted(Bucket(n_edge=int(e), n_node=int(n)) for n, e in d["buckets"]),
                   oversize=d.get("oversize", "new_bucket"), node_multiple=d.get("node_multiple", 8),
                   edge_multiple=d.get("edge_multiple", 64), max_ratio=d.get("max_ratio", 1.25),
                   n_added=d.get("n_added", 0))


@flax.struct.dataclass
class DeviceBatch:
    """What the per-device step functions see (a pytree of arrays only, so shapes alone decide
    compilation). On the host / before sharding every leaf has a leading device axis [D, ...];
    inside a per-device function that axis is gone.

    Attributes:
      graph: padded jraph.GraphsTuple: nodes [N_pad, F], edges [E_pad, F_e] (or None),
        senders/receivers int32 [E_pad], n_node/n_edge int32 [G_pad], globals None.
      y: float32 [E_pad] edge labels (0 on padding).
      edge_mask, node_mask, graph_mask: bool [E_pad], [N_pad], [G_pad], True for real entries
        (edge_mask: also False on an exact section's halo edges, see HitGraph.edge_mask).
      node_y: float32 [N_pad, K] per-node targets (0 on padding) when the graphs carry them, else
        None (no leaf: an edge task's step sees exactly the arrays above).
      graph_y: float32 [G_pad, K] per-graph targets (0 on padding slots), else None.
      loss_denominator: float32 scalar, the count the step divides its global loss sum by
        (batching.loss_normaliser = 'update'), else None: the step's own global item count.
    """

    graph: jraph.GraphsTuple
    y: np.ndarray
    edge_mask: np.ndarray
    node_mask: np.ndarray
    graph_mask: np.ndarray
    node_y: np.ndarray | None = None
    graph_y: np.ndarray | None = None
    loss_denominator: np.ndarray | None = None


@dataclasses.dataclass
class Batch:
    """One optimizer step's global batch, padded and stacked over devices (numpy).

    Attributes:
      graph: padded GraphsTuple with a leading device axis: nodes [D, N_pad, F], senders
        [D, E_pad], n_node [D, G_pad], ...
      y: float32 [D, E_pad]; edge_mask: bool [D, E_pad]; node_mask: bool [D, N_pad];
      graph_mask: bool [D, G_pad].
      n_real_edges: int64 [D] real edges per device; n_real_nodes: int64 [D].
      graph_ids: int64 [D, G_pad], dataset index of each graph slot (-1 for padding graphs).
      n_graphs: real graphs in the step.
      bucket: the rung every device is padded to.
      epoch, step: position in the data order (step counts within the epoch).
      node_y: float32 [D, N_pad, K], graph_y: float32 [D, G_pad, K]: per-node / per-graph
        targets when the graphs carry them (HitGraph.node_y / graph_y), else None.
      loss_denominator: float32 [D] (the same value on every device) when the loss is normalised
        per optimizer update (`with_update_denominators`), else None.
    """

    graph: jraph.GraphsTuple
    y: np.ndarray
    edge_mask: np.ndarray
    node_mask: np.ndarray
    graph_mask: np.ndarray
    n_real_edges: np.ndarray
    n_real_nodes: np.ndarray
    graph_ids: np.ndarray
    n_graphs: int
    bucket: Bucket
    epoch: int = 0
    step: int = 0
    node_y: np.ndarray | None = None
    graph_y: np.ndarray | None = None
    loss_denominator: np.ndarray | None = None

    @property
    def n_devices(self) -> int:
        return int(self.y.shape[0])

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """(devices, padded nodes, padded edges, padded graphs) per device: the compiled shape."""
        return (self.n_devices, int(self.node_mask.shape[1]), int(self.y.shape[1]),
                int(self.graph_mask.shape[1]))

    def device_batch(self) -> DeviceBatch:
        """The arrays-only pytree the parallel step functions take."""
        return DeviceBatch(graph=self.graph, y=self.y, edge_mask=self.edge_mask,
                           node_mask=self.node_mask, graph_mask=self.graph_mask,
                           node_y=self.node_y, graph_y=self.graph_y,
                           loss_denominator=self.loss_denominator)


# ---------------------------------------------------------------------------------------------
# Data order and dealing
# ---------------------------------------------------------------------------------------------

def graph_sizes(graphs: Sequence[HitGraph]) -> tuple[np.ndarray, np.ndarray]:
    """(nodes [G], edges [G]) int64 per graph."""
    nodes = np.fromiter((g.n_nodes for g in graphs), dtype=np.int64, count=len(graphs))
    edges = np.fromiter((g.n_edges for g in graphs), dtype=np.int64, count=len(graphs))
    return nodes, edges


def epoch_order(n_graphs: int, seed: int, epoch: int, shuffle: bool = True,
                groups: np.ndarray | None = None) -> np.ndarray:
    """Graph indices [n_graphs] in the order epoch `epoch` visits them (a pure function of
    (seed, epoch), so a resumed run sees the same order).

    groups: int [n_graphs] (e.g. event ids) or None. Given, the epoch shuffles the groups, in
    their sorted order, with the same draw that would shuffle that many graphs, and visits each
    group's graphs together in dataset order: a dataset of one graph per event and the same
    dataset cut into sections see their events in the same order."""
    if groups is None:
        if not shuffle:
            return np.arange(n_graphs)
        return np.random.default_rng([int(seed), int(epoch)]).permutation(n_graphs)
    ids, member = np.unique(np.asarray(groups), return_inverse=True)
    group_order = epoch_order(len(ids), seed, epoch, shuffle)
    rank = np.empty(len(ids), np.int64)
    rank[group_order] = np.arange(len(ids))
    return np.argsort(rank[member], kind="stable")


def steps_per_epoch(n_graphs: int, config: ml_collections.ConfigDict,
                    drop_remainder: bool | None = None) -> int:
    """Steps in one epoch of `n_graphs` graphs with `config.graphs_per_step` graphs per step."""
    per_step = _graphs_per_step(config)
    drop = config.drop_remainder if drop_remainder is None else drop_remainder
    return n_graphs // per_step if drop else -(-n_graphs // per_step)


def _graphs_per_step(config) -> int:
    per_step = int(config.graphs_per_step)
    if per_step < 1:
        raise ConfigError(f"batching.graphs_per_step must be >= 1, got {per_step}")
    return per_step


def deal_like_sized(edge_counts: np.ndarray, n_devices: int) -> list[np.ndarray]:
    """Splits one step's graphs over devices so real edge counts are balanced.

    Largest graph first, each to the least-loaded device that still has fewer than
    ceil(G / D) graphs (LPT with a cardinality cap), so device graph counts differ by <= 1.

    Args:
      edge_counts: int [G] edges of the step's graphs.
      n_devices: D.
    Returns:
      D arrays of positions into `edge_counts` (each sorted ascending).
    """
    n = len(edge_counts)
    cap = max(1, -(-n // n_devices))
    load = np.zeros(n_devices, dtype=np.int64)
    count = np.zeros(n_devices, dtype=np.int64)
    owner = np.empty(n, dtype=np.int64)
    full = np.iinfo(np.int64).max
    # stable sort so ties keep the data order (reproducible)
    for pos in np.argsort(-np.asarray(edge_counts), kind="stable"):
        open_load = np.where(count < cap, load, full)
        d = int(np.argmin(open_load))
        owner[pos] = d
        load[d] += edge_counts[pos]
        count[d] += 1
    return [np.flatnonzero(owner == d) for d in range(n_devices)]


def _step_slices(order: np.ndarray, per_step: int, drop_remainder: bool) -> list[np.ndarray]:
    n_steps = len(order) // per_step if drop_remainder else -(-len(order) // per_step)
    return [order[s * per_step:(s + 1) * per_step] for s in range(n_steps)]


def epoch_steps(edge_counts: np.ndarray, per_step: int, seed: int, epoch: int, *, shuffle: bool = True,
                drop_remainder: bool = True, sort_window: int = 0, groups: np.ndarray | None = None
                ) -> list[np.ndarray]:
    """The steps of one epoch as arrays of dataset indices (a pure function of its arguments).

    Args:
      edge_counts: int [G] edges per graph (used only when sort_window > 1).
      per_step: graphs per step. seed, epoch: select the order.
      sort_window: > 1 (and shuffle): cut the shuffled order into windows of
        sort_window * per_step graphs, sort each window by size, cut it into steps and shuffle
        the steps, so a step's graphs are of similar size (much less padding when each device
        gets only one or two graphs) at the price of less random batch composition.
      groups: int [G] group (event) of each graph: whole groups in shuffled order (`epoch_order`);
        not with sort_window.
    """
    order = epoch_order(len(edge_counts), seed, epoch, shuffle, groups)
    if not (shuffle and sort_window > 1):
        return _step_slices(order, per_step, drop_remainder)
    window = sort_window * per_step
    steps = []
    for start in range(0, len(order), window):
        part = order[start:start + window]
        part = part[np.argsort(np.asarray(edge_counts)[part], kind="stable")]
        steps.extend(_step_slices(part, per_step, drop_remainder))
    perm = np.random.default_rng([int(seed), int(epoch), 1]).permutation(len(steps))
    return [steps[i] for i in perm]


# ---------------------------------------------------------------------------------------------
# Ladder
# ---------------------------------------------------------------------------------------------

def make_ladder(graphs: Sequence[HitGraph] | tuple[np.ndarray, np.ndarray],
                config: ml_collections.ConfigDict, n_devices: int, *, seed: int = 0
                ) -> BucketLadder:
    """Builds the bucket ladder for a dataset (or takes `config.buckets` when given).

    The bucket of a step is set by its largest device batch, so the ladder is fitted to the
    per-step (max device nodes, max device edges) of `config.ladder_sample_epochs` simulated
    epochs (same order and dealing as `batch_iterator`). The top rung covers the largest device
    batch possible (sum of the ceil(G/D) largest graphs), so no later epoch needs a new shape.
    Edge sizes below it (multiples of edge_multiple, at most max_buckets rungs in all):
      'geometric': top / r^k down to the smallest sampled size, r in [min_ratio, max_ratio]
        the smallest ratio covering the sampled range (if even max_ratio cannot, the smallest
        rung also takes everything below it);
      'optimal': the rungs minimising the total padded edges of the sampled steps (exact
        dynamic programme over the sampled sizes) -- best utilisation for a given shape budget,
        neighbouring rungs may be further apart than max_ratio where the data are sparse.
    Each rung's node capacity is the largest node count sampled for steps it (or a smaller
    rung) holds, times node_slack, rounded up to node_multiple (a node-heavy batch simply moves
    up a rung).

    Args:
      graphs: the training graphs, or (node_counts [G], edge_counts [G]).
      config: batching config.
      n_devices: D, the number of devices a step is split over.
      seed: data-order seed (only affects which steps are sampled).
    """
    _check_config(config)
    kw = dict(oversize=config.oversize, node_multiple=int(config.node_multiple),
              edge_multiple=int(config.edge_multiple), max_ratio=float(config.max_ratio))
    if len(config.buckets):
        try:
            buckets = sorted(Bucket(n_edge=int(e), n_node=int(n)) for n, e in config.buckets)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"batching.buckets must be ((n_node, n_edge), ...): {exc}") from exc
        return BucketLadder(buckets=buckets, **kw)
    groups = None
    if isinstance(graphs, tuple) and len(graphs) == 2 and isinstance(graphs[0], np.ndarray):
        nodes, edges = (np.asarray(a, dtype=np.int64) for a in graphs)
    else:
        nodes, edges = graph_sizes(graphs)
        groups = step_groups(graphs, config)
    if len(edges) == 0:
        raise InputError("cannot build a bucket ladder from an empty graph list")
    step_nodes, step_edges = sample_step_sizes(nodes, edges, config, n_devices, seed, groups)
    per_device = max(1, -(-min(_graphs_per_step(config), len(edges)) // n_devices))
    e_mult, n_mult = int(config.edge_multiple), int(config.node_multiple)
    hi_edges = max(1, int(np.sort(edges)[::-1][:per_device].sum()))
    hi_nodes = int(np.sort(nodes)[::-1][:per_device].sum())
    if config.ladder == "geometric":
        rungs = geometric_rungs(max(1, int(step_edges.min())), hi_edges, int(config.max_buckets),
                                float(config.min_ratio), float(config.max_ratio), e_mult)
    else:
        top = int(_round_up(hi_edges, e_mult))
        sampled_top = int(_round_up(step_edges.max(), e_mult))
        budget = int(config.max_buckets) - (1 if top > sampled_top else 0)
        rungs = optimal_rungs(step_edges, max(budget, 1), e_mult)
        rungs = np.unique(np.append(rungs, top))[-int(config.max_buckets):]
    # node capacity: cumulative max of nodes of the sampled steps each rung would hold
    rung_of = np.minimum(np.searchsorted(rungs, step_edges, side="left"), len(rungs) - 1)
    max_nodes = np.zeros(len(rungs), dtype=np.int64)
    np.maximum.at(max_nodes, rung_of, step_nodes)
    max_nodes = np.maximum.accumulate(max_nodes)
    node_cap = _round_up(np.ceil(max_nodes * float(config.node_slack)).astype(np.int64) + 1, n_mult)
    node_cap[-1] = max(node_cap[-1], int(_round_up(hi_nodes + 1, n_mult)))
    node_cap = np.maximum.accumulate(node_cap)
    buckets = [Bucket(n_edge=int(e), n_node=int(n)) for e, n in zip(rungs, node_cap)]
    return BucketLadder(buckets=buckets, **kw)


def geometric_rungs(lo: int, hi: int, max_buckets: int, min_ratio: float, max_ratio: float,
                    multiple: int) -> np.ndarray:
    """Ascending edge sizes: hi / r^k rounded up to `multiple`, down to the first rung <= lo.

    r is the smallest ratio in [min_ratio, max_ratio] covering [lo, hi] with max_buckets rungs;
    if even max_ratio cannot, the smallest rung also takes everything below it.
    """
    if hi <= lo or max_buckets <= 1:
        return np.array([_round_up(hi, multiple)], dtype=np.int64)
    ratio = (hi / lo) ** (1.0 / (max_buckets - 1))
    ratio = min(max(ratio, min_ratio), max_ratio)
    sizes = []
    k = 0
    while len(sizes) < max_buckets:
        size = hi / ratio ** k
        sizes.append(int(_round_up(math.ceil(size), multiple)))
        if size <= lo:
            break
        k += 1
    return np.unique(np.asarray(sizes, dtype=np.int64))


def optimal_rungs(sizes: np.ndarray, max_buckets: int, multiple: int, max_candidates: int = 1024
                  ) -> np.ndarray:
    """At most max_buckets ascending sizes (multiples of `multiple`, the largest covering
    max(sizes)) minimising sum_i rung(sizes_i), where rung(s) is the smallest rung >= s.

    Exact dynamic programme over the distinct rounded sizes (thinned to max_candidates evenly
    spaced ones for very spread data): O(max_buckets * candidates^2) numpy work.
    """
    cand, counts = np.unique(_round_up(np.asarray(sizes), multiple), return_counts=True)
    if len(cand) > max_candidates:  # keep the largest; samples move up to the next candidate
        keep = np.unique(np.round(np.linspace(0, len(cand) - 1, max_candidates)).astype(int))
        cum_all = np.cumsum(counts)
        cand, counts = cand[keep], np.diff(np.concatenate([[0], cum_all[keep]]))
    m = len(cand)
    if m <= max_buckets:
        return cand.astype(np.int64)
    value = cand.astype(np.float64)
    cum = np.cumsum(counts).astype(np.float64)
    # cost[j]: least total padded size covering every sample <= cand[j] with the top rung at j
    cost = value * cum
    not_below = np.triu(np.ones((m, m), dtype=bool))  # [j, i]: i >= j cannot be the rung below j
    back = []  # per extra rung allowed: rung below j, or -1 if that rung did not help
    for _ in range(max_buckets - 1):
        total = cost[None, :] + value[:, None] * (cum[:, None] - cum[None, :])
        total[not_below] = np.inf
        below = np.argmin(total, axis=1)
        with_rung = total[np.arange(m), below]
        better = with_rung < cost
        back.append(np.where(better, below, -1))
        cost = np.where(better, with_rung, cost)
    rungs, j = [m - 1], m - 1
    for below in reversed(back):
        if below[j] >= 0:
            j = int(below[j])
            rungs.append(j)
    return np.sort(cand[rungs]).astype(np.int64)


def sample_step_sizes(nodes: np.ndarray, edges: np.ndarray, config: ml_collections.ConfigDict,
                      n_devices: int, seed: int = 0, groups: np.ndarray | None = None
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(max device nodes [S], max device edges [S]) over the steps of ladder_sample_epochs
    simulated epochs: the sizes that decide each step's bucket. groups: as `epoch_steps`."""
    per_step = min(_graphs_per_step(config), len(edges))
    out_n, out_e = [], []
    for epoch in range(max(1, int(config.ladder_sample_epochs))):
        for ids in epoch_steps(edges, per_step, seed, epoch, shuffle=bool(config.shuffle),
                               drop_remainder=False, sort_window=int(config.sort_window), groups=groups):
            parts = deal_like_sized(edges[ids], n_devices)
            out_n.append(max(nodes[ids[p]].sum() for p in parts))
            out_e.append(max(edges[ids[p]].sum() for p in parts))
        if not config.shuffle:
            break
    return np.asarray(out_n, dtype=np.int64), np.asarray(out_e, dtype=np.int64)


def _check_config(config) -> None:
    if config.ladder not in LADDERS:
        raise ConfigError(f"batching.ladder must be one of {LADDERS}, got {config.ladder!r}")
    if int(config.sort_window) < 0:
        raise ConfigError(f"batching.sort_window must be >= 0, got {config.sort_window}")
    if config.oversize not in OVERSIZE_POLICIES:
        raise ConfigError(f"batching.oversize must be one of {OVERSIZE_POLICIES}, got {config.oversize!r}")
    if not 1.0 < float(config.min_ratio) <= float(config.max_ratio):
        raise ConfigError("batching needs 1 < min_ratio <= max_ratio, got "
                          f"min_ratio={config.min_ratio}, max_ratio={config.max_ratio}")
    for key in ("node_multiple", "edge_multiple", "max_buckets"):
        if int(config[key]) < 1:
            raise ConfigError(f"batching.{key} must be >= 1, got {config[key]}")
    _graphs_per_step(config)
    if config.get("loss_normaliser", "step") not in LOSS_NORMALISERS:
        raise ConfigError(f"batching.loss_normaliser must be one of {LOSS_NORMALISERS}, "
                          f"got {config.loss_normaliser!r}")
    if config.get("whole_events", False) and int(config.sort_window) > 1:
        raise ConfigError("batching.whole_events keeps each event's graphs in order; it cannot also "
                          "sort steps by size: set batching.sort_window=0")


def step_groups(graphs: Sequence[HitGraph], config: ml_collections.ConfigDict) -> np.ndarray | None:
    """int64 [G] event id of every graph when config.whole_events, else None (graphs shuffle
    one by one)."""
    if not config.get("whole_events", False):
        return None
    return np.fromiter((int(g.event_id) for g in graphs), dtype=np.int64, count=len(graphs))


def update_denominators(item_counts: np.ndarray, steps: Sequence[np.ndarray], update_steps: int
                        ) -> np.ndarray:
    """float64 [S]: for each step, the real item count of the optimizer update it belongs to
    (steps [u * update_steps, (u + 1) * update_steps)) divided by update_steps. A loss sum over a
    step divided by this, averaged over the update's steps (optax.MultiSteps), is the mean over
    all the update's items, however unevenly the steps share them.

    Args:
      item_counts: [G] real items (loss-counted edges) per graph.
      steps: the epoch's steps as dataset indices (`epoch_steps`); len(steps) must be a
        multiple of update_steps.
    """
    if update_steps < 1 or len(steps) % update_steps:
        raise ConfigError(f"{len(steps)} steps per epoch do not split into optimizer updates of "
                          f"optimizer.accumulation_steps={update_steps} steps each; batching.loss_normaliser="
                          "'update' needs steps per epoch divisible by accumulation_steps")
    per_step = np.array([float(np.sum(item_counts[ids])) for ids in steps])
    per_update = per_step.reshape(-1, update_steps).sum(axis=1)
    return np.repeat(per_update / update_steps, update_steps)


def loss_item_counts(graphs: Sequence[HitGraph]) -> np.ndarray:
    """float64 [G]: the edges each graph's loss counts (its edge_mask, else every edge)."""
    return np.array([float(g.n_edges if g.edge_mask is None else np.count_nonzero(g.edge_mask))
                     for g in graphs])


# ---------------------------------------------------------------------------------------------
# Padding and iteration
# ---------------------------------------------------------------------------------------------

def _empty_like(graph: jraph.GraphsTuple) -> jraph.GraphsTuple:
    """A graph with zero nodes and edges and the same feature layout (for an idle device)."""
    def empty(x):
        return None if x is None else np.zeros((0,) + np.shape(x)[1:], dtype=np.asarray(x).dtype)
    return graph._replace(nodes=empty(graph.nodes), edges=empty(graph.edges),
                          senders=np.zeros(0, np.int32), receivers=np.zeros(0, np.int32),
                          n_node=np.zeros(1, np.int32), n_edge=np.zeros(1, np.int32), globals=None)


def pad_device_batch(graphs: Sequence[HitGraph], bucket: Bucket, n_graph: int,
                     template: HitGraph | None = None) -> tuple[jraph.GraphsTuple, np.ndarray]:
    """Concatenates one device's graphs and pads them to `bucket` (jraph utilities).

    Args:
      graphs: the device's HitGraphs (may be empty: then one empty graph from `template`).
      bucket: padded sizes; must fit (n_node > real nodes, n_edge >= real edges).
      n_graph: padded graph count (> number of graphs).
    Returns:
      (padded GraphsTuple with int32 senders/receivers/n_node/n_edge, y float32 [E_pad]).
    """
    if graphs:
        parts = [g.graph._replace(globals=None) for g in graphs]
        y = np.concatenate([np.asarray(g.y, np.float32) for g in graphs])
    else:
        parts = [_empty_like(template.graph)]
        y = np.zeros(0, np.float32)
    padded = jraph.pad_with_graphs(jraph.batch_np(parts), n_node=bucket.n_node, n_edge=bucket.n_edge,
                                   n_graph=n_graph)
    # jraph's offset arithmetic promotes indices to int64; the device side wants int32
    padded = padded._replace(senders=padded.senders.astype(np.int32),
                             receivers=padded.receivers.astype(np.int32),
                             n_node=padded.n_node.astype(np.int32), n_edge=padded.n_edge.astype(np.int32))
    y_pad = np.zeros(bucket.n_edge, np.float32)
    y_pad[:len(y)] = y
    return padded, y_pad


def make_batch(graphs: Sequence[HitGraph], ids: np.ndarray, n_devices: int, ladder: BucketLadder,
               n_graph_pad: int, *, epoch: int = 0, step: int = 0, use_jraph: bool = False) -> Batch:
    """Deals the graphs `ids` over devices (like-sized), pads all to one bucket and stacks.

    Args:
      graphs: the dataset. ids: int [G] dataset indices of this step's graphs.
      n_devices: D. ladder: the run's ladder (may grow with oversize='new_bucket').
      n_graph_pad: padded graphs per device (> the most graphs any device gets).
      use_jraph: build each device's batch with jraph.batch_np + jraph.pad_with_graphs and
        stack (the reference); default writes the identical layout straight into preallocated
        [D, ...] arrays (one copy of each graph instead of three: the copies dominate batching time
        on large graphs).
    """
    ids = np.asarray(ids, dtype=np.int64)
    edges = np.array([graphs[i].n_edges for i in ids], dtype=np.int64)
    nodes = np.array([graphs[i].n_nodes for i in ids], dtype=np.int64)
    parts = deal_like_sized(edges, n_devices)
    dev_edges = np.array([edges[p].sum() for p in parts], dtype=np.int64)
    dev_nodes = np.array([nodes[p].sum() for p in parts], dtype=np.int64)
    bucket = ladder.select(int(dev_nodes.max()), int(dev_edges.max()),
                           what=f"epoch {epoch} step {step} (graphs {ids.tolist()[:8]}...)")
    graph_ids = np.full((n_devices, n_graph_pad), -1, dtype=np.int64)
    for d, part in enumerate(parts):
        graph_ids[d, :len(part)] = ids[part]
    template = graphs[ids[0]] if len(ids) else None
    device_graphs = [[graphs[i] for i in ids[part]] for part in parts]
    if use_jraph:
        padded, ys = zip(*[pad_device_batch(gs, bucket, n_graph_pad, template=template)
                           for gs in device_graphs])
        stacked = jraph.GraphsTuple(*[None if padded[0][k] is None else np.stack([p[k] for p in padded])
                                      for k in range(len(padded[0]))])
        y = np.stack(ys)
    else:
        stacked, y = _pad_stack(device_graphs, bucket, n_graph_pad, template)
    n_dev_graphs = np.array([len(p) for p in parts])
    node_y, graph_y = stack_targets(device_graphs, bucket, n_graph_pad, template)
    return Batch(graph=stacked, y=y, node_y=node_y, graph_y=graph_y,
                 edge_mask=real_edge_mask(device_graphs, bucket.n_edge, dev_edges),
                 node_mask=np.arange(bucket.n_node)[None, :] < dev_nodes[:, None],
                 # an idle device still holds one (empty) graph slot; it is masked out too
                 graph_mask=np.arange(n_graph_pad)[None, :] < n_dev_graphs[:, None],
                 n_real_edges=dev_edges, n_real_nodes=dev_nodes, graph_ids=graph_ids,
                 n_graphs=int(len(ids)), bucket=bucket, epoch=int(epoch), step=int(step))


def real_edge_mask(device_graphs: list[list[HitGraph]], n_edge_pad: int, dev_edges: np.ndarray) -> np.ndarray:
    """bool [D, E_pad]: real edges, less those a graph's own edge_mask leaves out (the halo of an
    exact section), so the loss and the masked scores count only the edges meant to be learned."""
    mask = np.arange(n_edge_pad)[None, :] < dev_edges[:, None]
    for d, gs in enumerate(device_graphs):
        if any(g.edge_mask is not None for g in gs):
            mask[d, :dev_edges[d]] = np.concatenate(
                [np.ones(g.n_edges, bool) if g.edge_mask is None else g.edge_mask for g in gs])
    return mask


def _pad_stack(device_graphs: list[list[HitGraph]], bucket: Bucket, n_graph: int,
               template: HitGraph) -> tuple[jraph.GraphsTuple, np.ndarray]:
    """Same arrays as stacking `pad_device_batch` per device (jraph's padding layout: real graphs,
    one padding graph holding all padding nodes/edges, whose edges join its first node to itself,
    then empty graphs), written into preallocated [D, ...] arrays."""
    d_count = len(device_graphs)
    proto = template.graph

    def alloc(x, size):
        return None if x is None else np.zeros((d_count, size) + np.shape(x)[1:], np.asarray(x).dtype)
    nodes, edges = alloc(proto.nodes, bucket.n_node), alloc(proto.edges, bucket.n_edge)
    senders = np.empty((d_count, bucket.n_edge), np.int32)
    receivers = np.empty((d_count, bucket.n_edge), np.int32)
    n_node = np.zeros((d_count, n_graph), np.int32)
    n_edge = np.zeros((d_count, n_graph), np.int32)
    y = np.zeros((d_count, bucket.n_edge), np.float32)
    for d, gs in enumerate(device_graphs):
        n_off = e_off = 0
        for slot, g in enumerate(gs):
            n, e = g.n_nodes, g.n_edges
            if nodes is not None:
                nodes[d, n_off:n_off + n] = g.graph.nodes
            if edges is not None:
                edges[d, e_off:e_off + e] = g.graph.edges
            senders[d, e_off:e_off + e] = g.graph.senders + n_off
            receivers[d, e_off:e_off + e] = g.graph.receivers + n_off
            y[d, e_off:e_off + e] = g.y
            n_node[d, slot], n_edge[d, slot] = n, e
            n_off, e_off = n_off + n, e_off + e
        pad_slot = max(len(gs), 1)  # an idle device holds one empty graph, as with jraph
        senders[d, e_off:] = n_off
        receivers[d, e_off:] = n_off
        n_node[d, pad_slot] = bucket.n_node - n_off
        n_edge[d, pad_slot] = bucket.n_edge - e_off
    graph = jraph.GraphsTuple(nodes=nodes, edges=edges, senders=senders, receivers=receivers,
                              n_node=n_node, n_edge=n_edge, globals=None)
    return graph, y


def stack_targets(device_graphs: list[list[HitGraph]], bucket: Bucket, n_graph: int,
                  template: HitGraph | None) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(node_y float32 [D, N_pad, K] or None, graph_y float32 [D, G_pad, K] or None): the graphs'
    per-node and per-graph targets in the node and graph-slot order of the padded batch (real
    nodes / graphs first, in dealing order, zeros after), present when `template` has them."""
    d_count = len(device_graphs)
    node_y = graph_y = None
    if template is not None and template.node_y is not None:
        node_y = np.zeros((d_count, bucket.n_node, np.shape(template.node_y)[1]), np.float32)
        for d, gs in enumerate(device_graphs):
            if gs:
                real = np.concatenate([g.node_y for g in gs])
                node_y[d, :len(real)] = real
    if template is not None and template.graph_y is not None:
        graph_y = np.zeros((d_count, n_graph, np.shape(template.graph_y)[0]), np.float32)
        for d, gs in enumerate(device_graphs):
            for slot, g in enumerate(gs):
                graph_y[d, slot] = g.graph_y
    return node_y, graph_y


def graph_slots(n_graphs: int, per_step: int, n_devices: int) -> int:
    """Padded graph slots per device: the most graphs a device gets in a step, plus jraph's
    padding graph (at least 2)."""
    return max(-(-min(per_step, max(n_graphs, 1)) // n_devices) + 1, 2)


def warmup_batches(graphs: Sequence[HitGraph], config: ml_collections.ConfigDict, n_devices: int,
                   ladder: BucketLadder) -> list[Batch]:
    """One all-padding Batch per rung of `ladder` (no real edges; the arrays have exactly the
    shapes `batch_iterator` yields for that rung), to compile every step shape before training
    so no compilation happens mid-run (a rung first used in epoch 3 would otherwise stall it)."""
    n_graph_pad = graph_slots(len(graphs), _graphs_per_step(config), n_devices)
    out = []
    for bucket in ladder.buckets:
        idle = [[] for _ in range(n_devices)]
        stacked, y = _pad_stack(idle, bucket, n_graph_pad, graphs[0])
        node_y, graph_y = stack_targets(idle, bucket, n_graph_pad, graphs[0])
        zeros = np.zeros(n_devices, np.int64)
        out.append(Batch(graph=stacked, y=y, node_y=node_y, graph_y=graph_y, edge_mask=np.zeros((n_devices, bucket.n_edge), bool),
                         node_mask=np.zeros((n_devices, bucket.n_node), bool),
                         graph_mask=np.zeros((n_devices, n_graph_pad), bool), n_real_edges=zeros,
                         n_real_nodes=zeros, graph_ids=np.full((n_devices, n_graph_pad), -1, np.int64),
                         n_graphs=0, bucket=bucket, epoch=-1, step=-1,
                         loss_denominator=(np.ones(n_devices, np.float32)
                                           if config.get("loss_normaliser", "step") == "update" else None)))
    return out


def batch_iterator(graphs: Sequence[HitGraph], config: ml_collections.ConfigDict, n_devices: int, *,
                   ladder: BucketLadder | None = None, seed: int = 0, epoch: int = 0,
                   start_step: int = 0, shuffle: bool | None = None,
                   drop_remainder: bool | None = None, update_steps: int = 0) -> Iterator[Batch]:
    """Yields the steps of one epoch, from step `start_step` on.

    The order is a pure function of (seed, epoch) (and the dataset), so resuming at
    (epoch, start_step) reproduces exactly the batches an uninterrupted run would see.

    Args:
      graphs: the dataset (HitGraphs with one graph each).
      config: batching config (graphs_per_step, shuffle, drop_remainder, ...).
      n_devices: D, devices a step is split over (leading axis of every array).
      ladder: the run's bucket ladder (build once with `make_ladder` and reuse for every epoch;
        None builds one from `graphs`).
      seed, epoch: select the order. start_step: first step to yield.
      shuffle, drop_remainder: override the config (evaluation: shuffle=False,
        drop_remainder=False, so every graph is seen once).
      update_steps: train steps per optimizer update; > 0 with config.loss_normaliser =
        'update' gives every batch its `loss_denominator` (`update_denominators`).
    """
    if n_devices < 1:
        raise ConfigError(f"n_devices must be >= 1, got {n_devices}")
    shuffle = bool(config.shuffle) if shuffle is None else shuffle
    drop = bool(config.drop_remainder) if drop_remainder is None else drop_remainder
    per_step = _graphs_per_step(config)
    if drop and len(graphs) < per_step:
        raise InputError(f"{len(graphs)} graphs is fewer than batching.graphs_per_step={per_step}; "
                         "lower graphs_per_step or add data")
    if ladder is None:
        ladder = make_ladder(graphs, config, n_devices, seed=seed)
    n_graph_pad = graph_slots(len(graphs), per_step, n_devices)
    edges = graph_sizes(graphs)[1] if int(config.sort_window) > 1 else np.zeros(len(graphs), np.int64)
    steps = epoch_steps(edges, per_step, seed, epoch, shuffle=shuffle, drop_remainder=drop,
                        sort_window=int(config.sort_window), groups=step_groups(graphs, config))
    denominators = None
    if update_steps and config.get("loss_normaliser", "step") == "update":
        denominators = update_denominators(loss_item_counts(graphs), steps, update_steps)
    for step, ids in enumerate(steps):
        if step < start_step:
            continue
        batch = make_batch(graphs, ids, n_devices, ladder, n_graph_pad, epoch=epoch, step=step)
        if denominators is not None:
            batch.loss_denominator = np.full(n_devices, denominators[step], np.float32)
        yield batch


def eval_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """A copy of a batching config for evaluation: data order fixed, every graph kept."""
    cfg = ml_collections.ConfigDict(config.to_dict())
    cfg.shuffle, cfg.drop_remainder, cfg.sort_window = False, False, 0
    return cfg


def eval_batch_iterator(graphs: Sequence[HitGraph], config: ml_collections.ConfigDict, n_devices: int,
                        *, ladder: BucketLadder | None = None) -> Iterator[Batch]:
    """Every graph once, in dataset order (the last step may leave devices idle).

    Build the ladder once with `make_ladder(graphs, eval_config(config), n_devices)` and pass it
    at every evaluation, so evaluation compiles the same few shapes each time.
    """
    cfg = eval_config(config)
    if ladder is None:
        ladder = make_ladder(graphs, cfg, n_devices)
    return batch_iterator(graphs, cfg, n_devices, ladder=ladder)


# ---------------------------------------------------------------------------------------------
# Results back to graphs; statistics
# ---------------------------------------------------------------------------------------------

def split_edge_values(batch: Batch, values: np.ndarray) -> dict[int, np.ndarray]:
    """Maps per-edge device outputs back to the dataset's graphs.

    Args:
      batch: the batch the values were computed on.
      values: [D, E_pad] per-edge values (e.g. scores from the eval step).
    Returns:
      {dataset graph index: values of its real edges [E_i]} in the graph's own edge order.
    """
    return _split_rows(batch, values, batch.graph.n_edge)


def split_item_values(batch: Batch, values: np.ndarray, level: str) -> dict[int, np.ndarray]:
    """Maps per-node ([D, N_pad, ...], level 'node') or per-graph-slot ([D, G_pad, ...], level
    'graph') device outputs back to the dataset's graphs: {graph index: [N_i, ...] or [...]}."""
    if level == "node":
        return _split_rows(batch, values, batch.graph.n_node)
    values = np.asarray(values)
    return {int(gid): values[d, slot] for d in range(batch.n_devices)
            for slot, gid in enumerate(batch.graph_ids[d]) if gid >= 0}


def _split_rows(batch: Batch, values: np.ndarray, counts: np.ndarray) -> dict[int, np.ndarray]:
    """{graph index: its rows of values [D, R_pad, ...]}, rows counted per slot by counts [D, G_pad]."""
    values, counts = np.asarray(values), np.asarray(counts)
    out = {}
    for d in range(batch.n_devices):
        offsets = np.concatenate([[0], np.cumsum(counts[d])])
        for slot, gid in enumerate(batch.graph_ids[d]):
            if gid >= 0:
                out[int(gid)] = values[d, offsets[slot]:offsets[slot + 1]]
    return out


@dataclasses.dataclass
class PaddingStats:
    """Running padding utilisation and the set of compiled shapes.

    Attributes:
      real_edges, padded_edges, real_nodes, padded_nodes: totals over all devices and steps.
      shapes: distinct `Batch.shape`s seen (each is one compilation of a step function).
    """

    real_edges: int = 0
    padded_edges: int = 0
    real_nodes: int = 0
    padded_nodes: int = 0
    n_batches: int = 0
    shapes: set = dataclasses.field(default_factory=set)

    def update(self, batch: Batch) -> None:
        d, n_pad, e_pad, _ = batch.shape
        self.real_edges += int(batch.n_real_edges.sum())
        self.padded_edges += d * e_pad
        self.real_nodes += int(batch.n_real_nodes.sum())
        self.padded_nodes += d * n_pad
        self.n_batches += 1
        self.shapes.add(batch.shape)

    @property
    def edge_utilisation(self) -> float:
        """Real ÷ padded edges (1.0 = no padding)."""
        return self.real_edges / self.padded_edges if self.padded_edges else float("nan")

    @property
    def node_utilisation(self) -> float:
        return self.real_nodes / self.padded_nodes if self.padded_nodes else float("nan")

    def as_dict(self) -> dict:
        """Scalars for logging: edge/node utilisation, n_shapes, n_batches."""
        return {"edge_utilisation": self.edge_utilisation, "node_utilisation": self.node_utilisation,
                "n_shapes": len(self.shapes), "n_batches": self.n_batches}


def padding_stats(batches) -> PaddingStats:
    """PaddingStats over an iterable of Batches (e.g. one epoch, to report the ladder's quality)."""
    stats = PaddingStats()
    for batch in batches:
        stats.update(batch)
    return stats


def prefetch(iterator: Iterable, size: int = 2, transform: Callable | None = None) -> Iterator:
    """Yields the items of `iterator` (optionally `transform(item)`, e.g. DataParallel.put_batch
    to start the host->device copy early), produced in a background thread `size` items ahead, so
    host-side batching overlaps the device step. Exceptions are re-raised in the consumer; a
    consumer that stops early just leaves the (daemon) thread idle."""
    buffer: queue.Queue = queue.Queue(maxsize=max(1, size))
    done = object()

    def produce():
        try:
            for item in iterator:
                buffer.put(transform(item) if transform is not None else item)
        except BaseException as exc:  # hand over to the consumer thread
            buffer.put(_Raised(exc))
        buffer.put(done)

    threading.Thread(target=produce, daemon=True, name="gnntrack-prefetch").start()
    while True:
        item = buffer.get()
        if item is done:
            return
        if isinstance(item, _Raised):
            raise item.exc
        yield item


@dataclasses.dataclass
class _Raised:
    exc: BaseException


def synthetic_hit_graph(rng: np.random.Generator, n_node: int, n_edge: int, *, n_node_features: int = 3,
                        n_edge_features: int = 4, true_fraction: float = 0.3, event_id: int = 0
                        ) -> HitGraph:
    """A random HitGraph of exact size (random features, endpoints and labels) for tests and
    benchmarks of batching and training steps; not physics."""
    nodes = rng.normal(size=(n_node, n_node_features)).astype(np.float32)
    edges = rng.normal(size=(n_edge, n_edge_features)).astype(np.float32)
    graph = jraph.GraphsTuple(
        nodes=nodes, edges=edges, senders=rng.integers(0, n_node, n_edge).astype(np.int32),
        receivers=rng.integers(0, n_node, n_edge).astype(np.int32),
        n_node=np.array([n_node], np.int32), n_edge=np.array([n_edge], np.int32), globals=None)
    y = (rng.random(n_edge) < true_fraction).astype(np.float32)
    return HitGraph(graph=graph, y=y, hit_id=np.arange(1, n_node + 1, dtype=np.int64),
                    particle_id=np.zeros(n_node, np.int64), layer=np.zeros(n_node, np.int32),
                    edge_pt=np.zeros(n_edge, np.float32), event_id=int(event_id))
