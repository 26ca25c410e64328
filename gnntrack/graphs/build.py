"""Layer-pair hit-graph construction (HEP.TrkX / interaction-network style), numpy on the host.

    graph = build_graph(event, default_graph_config())              # one HitGraph
    graphs = build_event_graphs(event, config)                      # one per section
    graphs, stats = build_event(event, config, layers, pairs)       # + efficiency counts

Steps: select hits (detector selection, truth pT cut, noise, duplicates) -> for each allowed layer
pair (inner, outer) find candidate segments with a phi-window search on phi-sorted hits
(np.searchsorted, wrap-around at +-pi, O(N log N + candidates) time, candidates streamed in
chunks so memory is O(edges)) -> keep those passing |dphi/dr| <= phi_slope_max,
|z0| <= z0_max and |deta| <= deta_max -> truth labels, features -> optional sections.

An event with no hit in the selection gives a graph with 0 nodes and 0 edges (not an error here:
training leaves such graphs out and evaluation names them, see gnntrack.train.data and
gnntrack.tracks.evaluate). Hit positions are finite and within a detector's reach: the reader
refuses others (gnntrack.io.trackml).
"""

from __future__ import annotations

import dataclasses

import jraph
import numpy as np

from gnntrack.detector.luxe import luxe_detector
from gnntrack.errors import ConfigError, InputError
from gnntrack.graphs import features as feats
from gnntrack.graphs import truth as truth_lib
from gnntrack.graphs.cone import bend_slope, cone_edges, cone_layer_pairs
from gnntrack.graphs.config import cell_feature_names, default_graph_config, validate_graph_config
from gnntrack.graphs.filter import filter_edges, load_filter
from gnntrack.graphs.layer_map import LayerTable, count_layer_pairs, default_layer_table, resolve_layer_pairs
from gnntrack.graphs.metric_learning import check_embedding, metric_edges
from gnntrack.graphs.sections import exact_sections, quantile_sections, random_sections, split_sections
from gnntrack.graphs.types import HitGraph

TWO_PI = 2.0 * np.pi
# Thresholds (GeV) for the cumulative efficiency / purity table (interaction-network paper's cuts).
PT_THRESHOLDS = (0.0, 0.5, 0.7, 1.0, 1.5, 2.0, 5.0)
# Bin edges (GeV) for the differential efficiency.
PT_BIN_EDGES = (0.0, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 5.0, 10.0, np.inf)


@dataclasses.dataclass
class Nodes:
    """The selected hits, arrays [N]: hit_id int64; x, y, z, r, phi, eta float64 (mm, rad);
    layer int32; particle_id int64 (0 noise, -1 no truth); pt float64 (GeV, 0 noise/unknown);
    half int8, key float64 (path order, see truth.path_keys); cells dict or None."""

    hit_id: np.ndarray
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    r: np.ndarray
    phi: np.ndarray
    eta: np.ndarray
    layer: np.ndarray
    particle_id: np.ndarray
    pt: np.ndarray
    half: np.ndarray
    key: np.ndarray
    cells: dict | None = None

    def __len__(self) -> int:
        return len(self.hit_id)

    def take(self, index: np.ndarray) -> "Nodes":
        fields = {f.name: getattr(self, f.name)[index] for f in dataclasses.fields(self) if f.name != "cells"}
        cells = None if self.cells is None else {k: v[index] for k, v in self.cells.items()}
        return Nodes(**fields, cells=cells)


# ------------------------------------------------------------------------------------------ nodes

def select_nodes(event, config, layers: LayerTable) -> Nodes:
    """Hits of `event` that become nodes under `config` (selection, pt_min, noise, duplicates).

    A particle's pT is taken from the particles table (at its vertex); for particles missing from
    it (or without a particles table) from the truth momentum at each hit. The vertex used to
    order hits along the path falls back to the origin likewise.

    Raises InputError for unknown (volume_id, layer_id) or when a truth cut is asked of an event
    without truth.
    """
    hits = event.hits
    source = f"event {event.event_id}"
    hit_id = hits["hit_id"].to_numpy(np.int64)
    layer = layers.index(hits["volume_id"].to_numpy(), hits["layer_id"].to_numpy())
    if (layer < 0).any():
        bad = np.unique(np.stack([hits["volume_id"].to_numpy()[layer < 0],
                                  hits["layer_id"].to_numpy()[layer < 0]], axis=1), axis=0)
        raise InputError(f"{source}: hits on (volume_id, layer_id) unknown to the detector: "
                         f"{[tuple(map(int, b)) for b in bad[:5]]}")
    keep = layers.selection_mask(config.selection)[layer]

    needs_truth = config.pt_min > 0 or config.remove_noise or config.remove_duplicates
    if event.truth is None:
        if needs_truth:
            raise InputError(f"{source} has no truth, but the graph config asks for "
                             f"pt_min={config.pt_min}, remove_noise={config.remove_noise}, "
                             f"remove_duplicates={config.remove_duplicates}")
        particle_id = np.full(hit_id.shape, -1, np.int64)
        pt = np.zeros(hit_id.shape)
        half = np.zeros(hit_id.shape, np.int8)
        key = np.zeros(hit_id.shape)
    else:
        particle_id, pt, half, key = _hit_truth(event, hit_id, source)
    if config.pt_min > 0:
        keep &= (particle_id > 0) & (pt >= config.pt_min)
    if config.remove_noise:
        keep &= particle_id != 0

    x = hits["x"].to_numpy(np.float64)
    y = hits["y"].to_numpy(np.float64)
    z = hits["z"].to_numpy(np.float64)
    idx = np.flatnonzero(keep)
    if config.remove_duplicates and idx.size:
        idx = _first_per_particle_layer(idx, particle_id, layer, half, key)
    r = np.hypot(x[idx], y[idx])
    cells = None
    if cell_feature_names(config):
        if event.cells is None:
            raise InputError(f"{source}: node features {tuple(config.features.node)} need the cells table")
        cells = feats.cell_features(event.cells, hit_id[idx], hits["volume_id"].to_numpy()[idx],
                                    cell_feature_names(config), source)
    return Nodes(hit_id=hit_id[idx], x=x[idx], y=y[idx], z=z[idx], r=r,
                 phi=np.arctan2(y[idx], x[idx]), eta=np.arcsinh(z[idx] / np.maximum(r, 1e-9)),
                 layer=layer[idx], particle_id=particle_id[idx], pt=pt[idx], half=half[idx],
                 key=key[idx], cells=cells)


def _hit_truth(event, hit_id: np.ndarray, source: str):
    """Per-hit particle_id, particle pT, path keys, aligned with `hit_id`."""
    truth = event.truth
    t_hit = truth["hit_id"].to_numpy(np.int64)
    if len(t_hit) == len(hit_id) and np.array_equal(t_hit, hit_id):
        rows = np.arange(len(hit_id))
    else:
        order = np.argsort(t_hit, kind="stable")
        pos = np.clip(np.searchsorted(t_hit[order], hit_id), 0, max(len(t_hit) - 1, 0))
        if len(t_hit) == 0 or not np.array_equal(t_hit[order][pos], hit_id):
            raise InputError(f"{source}: truth table lacks rows for some hit_id (truth must cover every hit)")
        rows = order[pos]
    col = lambda name: truth[name].to_numpy(np.float64)[rows]  # noqa: E731
    particle_id = truth["particle_id"].to_numpy(np.int64)[rows]
    tpx, tpy = col("tpx"), col("tpy")
    vx = np.zeros(len(rows))
    vy = np.zeros(len(rows))
    vz = np.zeros(len(rows))
    pt = np.hypot(tpx, tpy)  # fallback: momentum at the hit
    particles = event.particles
    if particles is not None and len(particles):
        p_id = particles["particle_id"].to_numpy(np.int64)
        order = np.argsort(p_id, kind="stable")
        pos = np.clip(np.searchsorted(p_id[order], particle_id), 0, len(p_id) - 1)
        known = p_id[order][pos] == particle_id
        prow = order[pos]
        pcol = lambda name: particles[name].to_numpy(np.float64)[prow]  # noqa: E731
        pt = np.where(known, np.hypot(pcol("px"), pcol("py")), pt)
        vx, vy, vz = (np.where(known, pcol(n), 0.0) for n in ("vx", "vy", "vz"))
    pt = np.where(particle_id > 0, pt, 0.0)
    half, key = truth_lib.path_keys(col("tx"), col("ty"), col("tz"), tpx, tpy, vx, vy, vz)
    return particle_id, pt, half, key


def _first_per_particle_layer(idx, particle_id, layer, half, key) -> np.ndarray:
    """Drops all but the first hit (along the path) of each (particle, layer); noise is kept."""
    pid = particle_id[idx]
    order = np.lexsort((key[idx], half[idx], layer[idx], pid))
    s_pid, s_lay = pid[order], layer[idx][order]
    first = np.r_[True, (s_pid[1:] != s_pid[:-1]) | (s_lay[1:] != s_lay[:-1])]
    keep = first | (s_pid <= 0)
    return np.sort(idx[order[keep]])


# ------------------------------------------------------------------------------------------ edges

def find_edges(nodes: Nodes, layer_pairs: np.ndarray, config) -> tuple[np.ndarray, np.ndarray]:
    """Segments passing the cuts, for every layer pair. Returns senders, receivers int32 [E]
    (sender on the pair's first layer)."""
    n = len(nodes)
    if n == 0 or len(layer_pairs) == 0:
        return np.zeros(0, np.int32), np.zeros(0, np.int32)
    # Group nodes by layer, phi-sorted within a layer: one sort for all pairs.
    order = np.lexsort((nodes.phi, nodes.layer))
    sorted_layer = nodes.layer[order]
    n_layers = int(max(nodes.layer.max(), layer_pairs.max())) + 1
    start = np.searchsorted(sorted_layer, np.arange(n_layers), "left")
    stop = np.searchsorted(sorted_layer, np.arange(n_layers), "right")
    senders, receivers = [], []
    max_edges = int(config.max_edges)
    n_edges = 0
    for la, lb in np.asarray(layer_pairs):
        a = order[start[la]:stop[la]]
        b = order[start[lb]:stop[lb]]
        if a.size == 0 or b.size == 0:
            continue
        for s, r in _pair_edges(nodes, a, b, config):
            senders.append(s)
            receivers.append(r)
            n_edges += s.size
            if max_edges and n_edges > max_edges:
                raise InputError(f"graph exceeds max_edges={max_edges} (> {n_edges} edges so far); "
                                 "tighten the cuts or raise graph.max_edges")
    if not senders:
        return np.zeros(0, np.int32), np.zeros(0, np.int32)
    return np.concatenate(senders).astype(np.int32), np.concatenate(receivers).astype(np.int32)


def _pair_edges(nodes: Nodes, a: np.ndarray, b: np.ndarray, config):
    """Yields (senders, receivers) chunks for one layer pair; a, b: node indices, phi-sorted."""
    slope = float(config.phi_slope_max)
    z0_max = float(config.z0_max)
    deta_max = float(config.deta_max)
    ra, za, pa = nodes.r[a], nodes.z[a], nodes.phi[a]
    rb, zb, pb = nodes.r[b], nodes.z[b], nodes.phi[b]
    half_width = slope * _max_abs_dr(ra, za, rb, zb, z0_max)
    half_width = np.minimum(half_width, np.pi - 1e-9)  # a window never wraps onto itself
    # Outer hits repeated at phi - 2pi and phi + 2pi: windows crossing +-pi stay contiguous.
    ext_phi = np.concatenate([pb - TWO_PI, pb, pb + TWO_PI])
    lo = np.searchsorted(ext_phi, pa - half_width, "left")
    hi = np.searchsorted(ext_phi, pa + half_width, "right")
    counts = np.where(half_width >= 0, hi - lo, 0)
    # Chunk the senders so that at most ~chunk_size candidates exist at once.
    cum = np.cumsum(counts)
    chunk = int(config.chunk_size)
    bounds = np.searchsorted(cum, np.arange(chunk, cum[-1] + chunk, chunk) if cum[-1] else [], "left")
    edges_at = truth_lib.sorted_unique(np.r_[0, np.minimum(bounds + 1, a.size), a.size])
    for i0, i1 in zip(edges_at[:-1], edges_at[1:]):
        c = counts[i0:i1]
        total = int(c.sum())
        if total == 0:
            continue
        ia = np.repeat(np.arange(i0, i1), c)
        # index into the extended outer array: lo of the sender + rank within its window
        ext = np.arange(total) + (lo[i0:i1] - (np.cumsum(c) - c))[ia - i0]
        ib = ext % b.size
        dr = rb[ib] - ra[ia]
        dz = zb[ib] - za[ia]
        dphi = ext_phi[ext] - pa[ia]  # already unwrapped by the extended array
        abs_dr = np.abs(dr)
        ok = (abs_dr > 1e-6) & (np.abs(dphi) <= slope * abs_dr)
        z0 = za[ia] - ra[ia] * dz / np.where(ok, dr, 1.0)
        ok &= np.abs(z0) <= z0_max
        if deta_max > 0:
            ok &= np.abs(nodes.eta[b][ib] - nodes.eta[a][ia]) <= deta_max
        yield a[ia[ok]], b[ib[ok]]


def _max_abs_dr(ra, za, rb, zb, z0_max) -> np.ndarray:
    """Per inner hit, an upper bound of |r_b - r_a| over the outer hits that can pass the z0 cut
    (-1 where none can). It bounds the phi window, since |dphi| <= slope * |dr|.

    z0 = za - ra dz / dr  =>  dr = ra dz / den, den = za - z0 in [za - z0_max, za + z0_max],
    dz in [zb_min - za, zb_max - za]. If den keeps its sign (|za| > z0_max), dr is bilinear in
    (dz, 1/den): its range is spanned by the four corners. If den changes sign but dz does not
    (a disk ahead), dr lies on two half-lines away from 0. Otherwise there is no restriction.
    Each range is intersected with the outer layer's r range.
    """
    m = rb.min() - ra
    M = rb.max() - ra
    dz_lo, dz_hi = zb.min() - za, zb.max() - za
    den_lo, den_hi = za - z0_max, za + z0_max
    straddle = (den_lo <= 0) & (den_hi >= 0)
    one_side = (dz_lo > 0) | (dz_hi < 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        corners = np.stack([ra * dz / den for dz in (dz_lo, dz_hi) for den in (den_lo, den_hi)])
        d_near = np.where(dz_lo > 0, dz_lo, dz_hi)  # the dz closest to 0 when one-sided
        half = np.stack([ra * d_near / den_lo, ra * d_near / den_hi])
    corners = np.nan_to_num(corners, nan=0.0)
    half = np.nan_to_num(half, nan=0.0)
    inf = np.full(ra.shape, np.inf)
    # pieces (lo, hi): case bilinear -> [min corner, max corner]; case two half-lines ->
    # (-inf, min half] and [max half, inf); otherwise (-inf, inf).
    lo1 = np.where(~straddle, corners.min(axis=0), -inf)
    hi1 = np.where(~straddle, corners.max(axis=0), np.where(one_side, half.min(axis=0), inf))
    lo2 = np.where(straddle & one_side, half.max(axis=0), inf)
    hi2 = inf
    margin = lambda v: 1e-6 * np.abs(np.where(np.isfinite(v), v, 0.0)) + 1e-3  # noqa: E731  float safety
    best = np.full(ra.shape, -1.0)
    for lo, hi in ((lo1, hi1), (lo2, hi2)):
        lo, hi = np.maximum(lo - margin(lo), m), np.minimum(hi + margin(hi), M)
        best = np.where(lo <= hi, np.maximum(best, np.maximum(np.abs(lo), np.abs(hi))), best)
    return best


# ------------------------------------------------------------------------------------------ graph

def make_hit_graph(nodes: Nodes, senders, receivers, y, config, event_id: int, section: int = -1,
                   phi_offset: float = 0.0, edge_mask=None) -> HitGraph:
    """Assembles a HitGraph (features computed here); phi_offset rotates node phi features;
    edge_mask bool [E] (or None): the edges the loss counts."""
    phi = feats.wrap_phi(nodes.phi - phi_offset) if phi_offset else nodes.phi
    node_x = feats.node_features(tuple(config.features.node), nodes.r, phi, nodes.z, nodes.eta, nodes.cells)
    edge_x = feats.edge_features(tuple(config.features.edge), senders, receivers,
                                 nodes.r, nodes.phi, nodes.z, nodes.eta)
    y = np.asarray(y, bool)
    graph = jraph.GraphsTuple(
        nodes=node_x, edges=edge_x, senders=np.asarray(senders, np.int32),
        receivers=np.asarray(receivers, np.int32), globals=None,
        n_node=np.array([len(nodes)], np.int32), n_edge=np.array([len(senders)], np.int32))
    edge_pt = np.where(y, nodes.pt[senders], 0.0).astype(np.float32)
    return HitGraph(graph=graph, y=y.astype(np.float32), hit_id=nodes.hit_id.astype(np.int64),
                    particle_id=nodes.particle_id.astype(np.int64), layer=nodes.layer.astype(np.int32),
                    edge_pt=edge_pt, event_id=int(event_id), section=int(section),
                    edge_mask=None if edge_mask is None else np.asarray(edge_mask, bool))


def graph_layer_table(config, detector=None) -> LayerTable:
    """The layer table of `detector`, else of the detector the graph config names."""
    if detector is None and config is not None and config.get("detector", "trackml") == "luxe":
        detector = luxe_detector()
    return default_layer_table(detector)


def prepare(config=None, detector=None, layer_pairs=None):
    """Validated config, layer table and layer pairs: compute once, reuse for many events."""
    config = default_graph_config() if config is None else config
    validate_graph_config(config)
    layers = graph_layer_table(config, detector)
    if layer_pairs is None and config.get("method", "geometric") == "cone":
        layer_pairs = cone_layer_pairs(layers, layers.selection_mask(config.selection), config.cone.max_dz)
    # a missing or unreadable trained stage stops here, before any event is read
    if config.get("method", "geometric") == "metric":
        check_embedding(config)
    if "filter" in config and config.filter.path:
        load_filter(config.filter.path)
    if layer_pairs is None:
        layer_pairs = resolve_layer_pairs(config, layers)
    layer_pairs = np.asarray(layer_pairs, np.int32).reshape(-1, 2)
    if len(layer_pairs) and (layer_pairs.min() < 0 or layer_pairs.max() >= len(layers)):
        raise ConfigError(f"layer_pairs index outside the detector's {len(layers)} layers")
    return config, layers, layer_pairs


def find_graph_edges(nodes: Nodes, layer_pairs: np.ndarray, config) -> tuple[np.ndarray, np.ndarray]:
    """senders, receivers int32 [E] from the edge search that config.method names."""
    search = {"cone": cone_edges, "metric": metric_edges}.get(config.get("method", "geometric"), find_edges)
    return search(nodes, layer_pairs, config)


def build_event(event, config=None, layers: LayerTable | None = None, layer_pairs=None):
    """Builds the graph(s) of one event and its construction statistics.

    Returns:
      (graphs, stats): list of HitGraph (one, or one per section) and a dict of counts
      (see `construction_stats`) for the whole event.
    """
    if layers is None or layer_pairs is None:
        config, layers, layer_pairs = prepare(config, layers, layer_pairs)
    nodes = select_nodes(event, config, layers)
    if config.max_nodes and len(nodes) > config.max_nodes:
        raise InputError(f"event {event.event_id}: {len(nodes)} nodes exceed max_nodes={config.max_nodes}")
    senders, receivers = find_graph_edges(nodes, layer_pairs, config)
    pairs = truth_lib.true_pairs(nodes.particle_id, nodes.layer, nodes.half, nodes.key)
    y = truth_lib.label_edges(senders, receivers, pairs, len(nodes), nodes.particle_id)
    stats = construction_stats(nodes, senders, receivers, y, pairs, has_truth=event.truth is not None)
    if "filter" in config and config.filter.path:
        keep = filter_edges(nodes, senders, receivers, config)
        before = stats
        senders, receivers, y = senders[keep], receivers[keep], y[keep]
        stats = construction_stats(nodes, senders, receivers, y, pairs, has_truth=event.truth is not None)
        stats["before_filter"] = {k: v for k, v in before.items() if k not in ("events", "has_truth")}
    if int(config.get("exact_sections", 0)) > 0:
        graphs = exact_section_graphs(nodes, senders, receivers, y, config, event.event_id)
    elif config.n_phi_sections * config.n_eta_sections == 1:
        graphs = [make_hit_graph(nodes, senders, receivers, y, config, event.event_id)]
    else:
        graphs = [make_hit_graph(nodes.take(idx), s, r, yy, config, event.event_id, section=k,
                                 phi_offset=center if config.rotate_sections else 0.0)
                  for k, (idx, s, r, yy, center) in enumerate(split_sections(nodes, senders, receivers, y, config))]
    return graphs, stats


def exact_section_graphs(nodes: Nodes, senders, receivers, y, config, event_id: int) -> list[HitGraph]:
    """The event's graph as config.exact_sections exact sections along the cone's bending slope, or
    of random home hits (config.section_by; see gnntrack.graphs.sections); each graph's edge_mask
    marks its core edges."""
    n_sections = int(config.exact_sections)
    if config.get("section_by", "slope") == "random":
        home = random_sections(len(nodes), n_sections, event_id)
    else:
        home = quantile_sections(bend_slope(nodes.x, nodes.z, config.cone.magnet_z_min, config.cone.magnet_z_max),
                                 n_sections)
    return [make_hit_graph(nodes.take(idx), s, r, y[edge_idx], config, event_id, section=k, edge_mask=core)
            for k, (idx, s, r, edge_idx, core) in enumerate(
                exact_sections(home, n_sections, senders, receivers, int(config.section_hops)))]


def build_event_graphs(event, config=None, detector=None, layer_pairs=None) -> list[HitGraph]:
    """The event's graph, or one graph per section when the config asks for sections."""
    config, layers, layer_pairs = prepare(config, detector, layer_pairs)
    return build_event(event, config, layers, layer_pairs)[0]


def build_graph(event, config=None, detector=None, layer_pairs=None) -> HitGraph:
    """The whole event as one HitGraph (sections in the config are ignored)."""
    config, layers, layer_pairs = prepare(config, detector, layer_pairs)
    if config.n_phi_sections * config.n_eta_sections != 1 or int(config.get("exact_sections", 0)):
        config = config.copy_and_resolve_references()
        config.n_phi_sections = config.n_eta_sections = 1
        config.exact_sections = 0
    return build_event(event, config, layers, layer_pairs)[0][0]


# ------------------------------------------------------------------------------------------ stats

def construction_stats(nodes: Nodes, senders, receivers, y, pairs, *, has_truth: bool = True) -> dict:
    """Counts for efficiency / purity (summable over events).

    efficiency = true segments present as edges / all true segments among the nodes;
    purity = true edges / edges. At threshold t (`by_pt_min`), both are restricted to hits of
    particles with pT >= t (noise excluded): the numbers a graph built with pt_min = t would give.
    `by_pt_bin` gives the differential efficiency (segment pT in [lo, hi)).
    """
    stats = {"events": 1, "nodes": len(nodes), "edges": int(len(senders)), "true_edges": int(np.sum(y)),
             "has_truth": bool(has_truth)}
    if not has_truth:
        return stats
    y = np.asarray(y, bool)
    # A segment is found iff a true edge joins it: only the (few) true edges need matching.
    found = truth_lib.found_pairs(pairs, senders[y], receivers[y], len(nodes))
    pair_pt = nodes.pt[pairs[:, 0]] if len(pairs) else np.zeros(0)
    stats["true_segments"] = int(len(pairs))
    stats["found_segments"] = int(found.sum())
    # Edges whose two hits both belong to particles with pT >= t: count by sorting min(pT) once.
    noise_free = (nodes.particle_id[senders] > 0) & (nodes.particle_id[receivers] > 0)
    min_pt = np.sort(np.minimum(nodes.pt[senders], nodes.pt[receivers])[noise_free])
    true_min_pt = np.sort(np.minimum(nodes.pt[senders[y]], nodes.pt[receivers[y]]))
    by_min = {}
    for t in PT_THRESHOLDS:
        seg = pair_pt >= t
        n_edges = len(senders) if t == 0 else min_pt.size - int(np.searchsorted(min_pt, t, "left"))
        n_true = int(y.sum()) if t == 0 else true_min_pt.size - int(np.searchsorted(true_min_pt, t, "left"))
        by_min[f"{t:g}"] = {"true_segments": int(seg.sum()), "found_segments": int(found[seg].sum()),
                            "edges": int(n_edges), "true_edges": int(n_true)}
    stats["by_pt_min"] = by_min
    by_bin = {}
    for lo, hi in zip(PT_BIN_EDGES[:-1], PT_BIN_EDGES[1:]):
        seg = (pair_pt >= lo) & (pair_pt < hi)
        by_bin[f"{lo:g}-{hi:g}"] = {"true_segments": int(seg.sum()), "found_segments": int(found[seg].sum())}
    stats["by_pt_bin"] = by_bin
    return stats


def count_event_layer_pairs(event, config, layers: LayerTable) -> np.ndarray:
    """int64 [L, L] layer transitions (from, to) of the event's true segments under `config`'s
    selection and truth cuts: the input of a learned layer map. Needs truth."""
    if event.truth is None:
        raise InputError(f"event {event.event_id} has no truth: cannot learn a layer map from it")
    nodes = select_nodes(event, config, layers)
    pairs = truth_lib.true_pairs(nodes.particle_id, nodes.layer, nodes.half, nodes.key)
    return count_layer_pairs(nodes.layer[pairs].reshape(-1, 2), len(layers))
