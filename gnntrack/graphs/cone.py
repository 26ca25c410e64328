"""Cone-window hit graphs for a dipole spectrometer with planar layers (the LUXE-like tracker).

    config = luxe_graph_config()          # graph.method = 'cone', graph.detector = 'luxe'
    graph = build_graph(event, config)    # gnntrack.graphs.build dispatches here

Behind the magnet a positron flies straight, along the line from the magnet's *bending point*
(where the extrapolations of its straight paths before and after the field meet) through its
hits. So one hit at (x_a, z_a) predicts the slope dx/dz = x_a / (z_a - z_bend) of its track and,
with y straight from the interaction point, dy/dz = y_a / z_a. A pair of hits on planes a, b
(z_b > z_a, z_b - z_a <= cone.max_dz: consecutive layers and the stave overlaps of one layer)
is an edge when the outer hit lies in the window
    |x_b - x_a - dz * x_a / (z_a - z_bend)| <= (x_slope_tolerance + scattering_tolerance * s) dz + x_tolerance
    |y_b - y_a - dz * y_a / z_a|            <= (y_slope_tolerance + scattering_tolerance * s) dz + y_tolerance
with dz = z_b - z_a of that pair and s the predicted x slope (the bending angle, ~ 1 / momentum:
multiple scattering grows with it). The position terms (resolution) dominate for the 6 mm
stave-to-stave pairs, the angular ones for layer-to-layer pairs, so one window serves both.
The bending point of a circular arc entering the field along z is z1 + L / (1 + cos theta)
(field from z1 to z1 + L, exit angle theta): L / 2 for small angles, a few cm further for the
softest positrons; `bend_slope` solves it by fixed-point iteration.

Search: per plane pair, outer hits sorted by x, the x window by np.searchsorted, candidates
streamed in chunks of ~chunk_size and cut in y: O(N log N + candidates) time, O(edges) memory.
Units: mm, rad.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from gnntrack.errors import InputError
from gnntrack.graphs.layer_map import LayerTable


def bend_slope(x: np.ndarray, z: np.ndarray, magnet_z_min: float, magnet_z_max: float,
               iterations: int = 4) -> np.ndarray:
    """float64 [N]: dx/dz of the straight line from the bending point through hits (x, z) [N]
    behind the magnet, for tracks that enter the field along z at x = 0."""
    x, z = np.asarray(x, np.float64), np.asarray(z, np.float64)
    length = magnet_z_max - magnet_z_min
    z_bend = np.full(x.shape, magnet_z_min + 0.5 * length)
    for _ in range(iterations):  # converges fast: z_bend moves by O(theta^2) L
        slope = x / (z - z_bend)
        z_bend = magnet_z_min + length / (1.0 + np.cos(np.arctan(slope)))
    return x / (z - z_bend)


def cone_layer_pairs(layers: LayerTable, selection_mask: np.ndarray, max_dz: float) -> np.ndarray:
    """int32 [P, 2] (inner, outer) layer rows of planes at most max_dz apart in z (0 < dz),
    among the selected layers; a layer's z is the middle of its z extent."""
    rows = np.flatnonzero(selection_mask)
    z = 0.5 * (layers.z_min + layers.z_max)[rows]
    dz = z[None, :] - z[:, None]
    a, b = np.nonzero((dz > 0) & (dz <= max_dz))
    return np.stack([rows[a], rows[b]], axis=1).astype(np.int32).reshape(-1, 2)


def window_pairs(lo: np.ndarray, hi: np.ndarray, chunk: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """All (i, j) with lo[i] <= j < hi[i], as index arrays, ~chunk pairs (at least one i) at a time."""
    counts = np.maximum(hi - lo, 0)
    start = np.cumsum(counts) - counts
    total = int(counts.sum())
    cuts = np.searchsorted(start, np.arange(chunk, total, chunk), "left")
    bounds = np.unique(np.r_[0, cuts, len(lo)])
    for i0, i1 in zip(bounds[:-1], bounds[1:]):
        c = counts[i0:i1]
        n = int(c.sum())
        if n == 0:
            continue
        i = np.repeat(np.arange(i0, i1), c)
        yield i, np.arange(n) - (start[i] - start[i0]) + lo[i]


def cone_edges(nodes, layer_pairs: np.ndarray, config) -> tuple[np.ndarray, np.ndarray]:
    """Edges of the cone-window search (module docstring) for every plane pair.

    Args: nodes: gnntrack.graphs.build.Nodes (x, y, z in mm, layer); layer_pairs: int [P, 2];
      config: graph config (its `cone` group, chunk_size, max_edges).
    Returns: senders, receivers int32 [E], sender on the pair's inner plane.
    """
    cone = config.cone
    slope = bend_slope(nodes.x, nodes.z, cone.magnet_z_min, cone.magnet_z_max)
    order = np.lexsort((nodes.x, nodes.layer))
    n_layers = int(max(nodes.layer.max(initial=-1), np.max(layer_pairs, initial=-1))) + 1
    bounds = np.searchsorted(nodes.layer[order], np.arange(n_layers + 1), "left")
    senders, receivers, n_edges = [], [], 0
    for la, lb in np.asarray(layer_pairs).reshape(-1, 2):
        a, b = order[bounds[la]:bounds[la + 1]], order[bounds[lb]:bounds[lb + 1]]
        if a.size == 0 or b.size == 0:
            continue
        dz = nodes.z[b[0]] - nodes.z[a]                        # planes: one z per layer
        s = slope[a]
        scatter = cone.scattering_tolerance * np.abs(s)
        centre = nodes.x[a] + s * dz
        half = (cone.x_slope_tolerance + scatter) * dz + cone.x_tolerance
        lo = np.searchsorted(nodes.x[b], centre - half, "left")
        hi = np.searchsorted(nodes.x[b], centre + half, "right")
        y_pred = nodes.y[a] * (1.0 + dz / nodes.z[a])        # straight in y from the origin
        y_half = (cone.y_slope_tolerance + scatter) * dz + cone.y_tolerance
        for i, j in window_pairs(lo, hi, int(config.chunk_size)):
            keep = np.abs(nodes.y[b[j]] - y_pred[i]) <= y_half[i]
            senders.append(a[i[keep]])
            receivers.append(b[j[keep]])
            n_edges += int(keep.sum())
            if config.max_edges and n_edges > config.max_edges:
                raise InputError(f"graph exceeds max_edges={config.max_edges} (> {n_edges} edges so far); "
                                 "tighten graph.cone or raise graph.max_edges")
    if not senders:
        return np.zeros(0, np.int32), np.zeros(0, np.int32)
    return np.concatenate(senders).astype(np.int32), np.concatenate(receivers).astype(np.int32)
