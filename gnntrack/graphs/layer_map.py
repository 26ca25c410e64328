"""Layers and layer pairs: which layer may connect to which.

A `LayerTable` lists the detector layers by their TrackML ids (volume_id, layer_id) with their
extent; the row number is the global layer index stored in `HitGraph.layer`. It comes from
`gnntrack.detector.geometry.default_detector()` when that module is present, otherwise from the
built-in TrackML layout (`trackml_layer_table`), so real TrackML input works without a detector.

Layer pairs are int32 arrays [P, 2] of (inner, outer) layer indices, oriented along the particle
path. They come from
  * geometry (`geometric_layer_pairs`): straight lines from the luminous region, consecutive layers
    each line crosses (adjacent barrel layers, barrel -> first disks, disk -> next disk, both
    endcaps), optionally also the next-but-k layer (`skip`) to bridge a missing hit;
  * truth (`count_layer_pairs` + `learned_layer_pairs`): the pairs that consecutive hits of real
    particles connect, saved as JSON (`save_layer_map`) with TrackML ids and reloaded with
    `load_layer_map`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np

from gnntrack.detector.geometry import default_detector
from gnntrack.errors import ConfigError, InputError
from gnntrack.io.atomic import write_json_atomic

LAYER_MAP_FORMAT = "gnntrack.layer_map/1"


@dataclasses.dataclass(frozen=True)
class LayerTable:
    """One row per layer. Arrays [L]: volume_id, layer_id (int32), is_barrel, is_pixel (bool),
    r_min, r_max, z_min, z_max (float64, mm): the extent of the layer's sensitive area."""

    volume_id: np.ndarray
    layer_id: np.ndarray
    is_barrel: np.ndarray
    is_pixel: np.ndarray
    r_min: np.ndarray
    r_max: np.ndarray
    z_min: np.ndarray
    z_max: np.ndarray

    def __len__(self) -> int:
        return len(self.volume_id)

    @property
    def keys(self) -> np.ndarray:
        return _key(self.volume_id, self.layer_id)

    def index(self, volume_id, layer_id) -> np.ndarray:
        """int32 [N] global layer index of each (volume_id, layer_id); -1 where unknown."""
        keys = self.keys
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        query = _key(np.asarray(volume_id), np.asarray(layer_id))
        pos = np.clip(np.searchsorted(sorted_keys, query), 0, max(len(keys) - 1, 0))
        found = (sorted_keys[pos] == query) if len(keys) else np.zeros(query.shape, bool)
        return np.where(found, order[pos], -1).astype(np.int32)

    def selection_mask(self, selection: str) -> np.ndarray:
        """bool [L]: layers in 'pixel' | 'barrel' | 'barrel_pixel' | 'all'."""
        if selection == "pixel":
            return self.is_pixel.copy()
        if selection == "barrel":
            return self.is_barrel.copy()
        if selection == "barrel_pixel":
            return self.is_barrel & self.is_pixel
        if selection == "all":
            return np.ones(len(self), bool)
        raise ConfigError(f"unknown selection {selection!r}; use pixel, barrel, barrel_pixel or all")

    def name(self, index: int) -> str:
        return f"v{int(self.volume_id[index])}l{int(self.layer_id[index])}"


def _key(volume_id, layer_id) -> np.ndarray:
    return np.asarray(volume_id, np.int64) * 10000 + np.asarray(layer_id, np.int64)


def trackml_layer_table() -> LayerTable:
    """The TrackML detector layout (approximate extents in mm), layers sorted by (volume, layer).

    Pixel: barrel volume 8 (4 layers), endcaps 7 (z < 0) and 9 (z > 0) with 7 disks each;
    short strips: 13 barrel (4), 12/14 endcaps (6 disks); long strips: 17 barrel (2), 16/18 (6).
    In negative endcaps layer_id 2 is the outermost disk (largest |z|).
    """
    rows = []  # (volume, layer, barrel, pixel, r_min, r_max, z_min, z_max)
    for lay, r in zip((2, 4, 6, 8), (32.0, 72.0, 116.0, 172.0)):
        rows.append((8, lay, True, True, r - 4, r + 4, -491.0, 491.0))
    pixel_z = (600.0, 700.0, 820.0, 960.0, 1100.0, 1300.0, 1500.0)
    for lay, z in zip(range(2, 16, 2), pixel_z[::-1]):
        rows.append((7, lay, False, True, 30.0, 176.0, -z - 8, -z + 8))
    for lay, z in zip(range(2, 16, 2), pixel_z):
        rows.append((9, lay, False, True, 30.0, 176.0, z - 8, z + 8))
    strip_z = (1220.0, 1500.0, 1820.0, 2150.0, 2550.0, 2950.0)
    for vol, radii, half in ((13, (260.0, 360.0, 500.0, 660.0), 1083.0), (17, (820.0, 1020.0), 1083.0)):
        for lay, r in zip(range(2, 2 + 2 * len(radii), 2), radii):
            rows.append((vol, lay, True, False, r - 8, r + 8, -half, half))
    for vol_neg, vol_pos, rmin, rmax in ((12, 14, 230.0, 720.0), (16, 18, 720.0, 1025.0)):
        for lay, z in zip(range(2, 14, 2), strip_z[::-1]):
            rows.append((vol_neg, lay, False, False, rmin, rmax, -z - 12, -z + 12))
        for lay, z in zip(range(2, 14, 2), strip_z):
            rows.append((vol_pos, lay, False, False, rmin, rmax, z - 12, z + 12))
    rows.sort(key=lambda t: (t[0], t[1]))
    cols = list(zip(*rows))
    return LayerTable(
        volume_id=np.array(cols[0], np.int32), layer_id=np.array(cols[1], np.int32),
        is_barrel=np.array(cols[2], bool), is_pixel=np.array(cols[3], bool),
        r_min=np.array(cols[4], np.float64), r_max=np.array(cols[5], np.float64),
        z_min=np.array(cols[6], np.float64), z_max=np.array(cols[7], np.float64))


def layer_table_from_detector(detector) -> LayerTable:
    """LayerTable from a `gnntrack.detector.geometry.Detector` (same row order as the detector,
    so that `Detector.layer_index` and `LayerTable.index` agree)."""
    get = lambda *names: next(np.asarray(getattr(detector, n)) for n in names if hasattr(detector, n))  # noqa: E731
    try:
        return LayerTable(
            volume_id=get("volume_id").astype(np.int32), layer_id=get("layer_id").astype(np.int32),
            is_barrel=get("is_barrel").astype(bool), is_pixel=get("is_pixel").astype(bool),
            r_min=get("r_min").astype(np.float64), r_max=get("r_max").astype(np.float64),
            z_min=get("z_min").astype(np.float64), z_max=get("z_max").astype(np.float64))
    except StopIteration as exc:
        raise InputError(f"detector {type(detector).__name__} lacks a layer attribute "
                         "(volume_id, layer_id, is_barrel, is_pixel, r_min, r_max, z_min, z_max)") from exc


def default_layer_table(detector=None) -> LayerTable:
    """The layer table of `detector`, else of gnntrack's default detector."""
    if isinstance(detector, LayerTable):
        return detector
    if detector is None:
        detector = default_detector()
    return layer_table_from_detector(detector)


# ----------------------------------------------------------------------------------- geometric pairs

def geometric_layer_pairs(table: LayerTable, selection: str = "pixel", *, z0_max: float = 200.0,
                          eta_max: float = 4.5, skip: int = 0, n_z0: int = 11, n_eta: int = 2001
                          ) -> np.ndarray:
    """Layer pairs crossed in sequence by straight lines from the beam line.

    Lines start at (0, 0, z0), z0 in [-z0_max, z0_max], with pseudorapidity in [-eta_max, eta_max];
    each line's crossings with the selected layers (cylinders at the mean radius within their
    z extent, disks at the mean z within their r extent) are ordered along the line, and each
    layer is paired with the next 1 + skip layers crossed.

    Returns:
      int32 [P, 2] unique (inner, outer) global layer indices, sorted.
    """
    selected = np.flatnonzero(table.selection_mask(selection))
    if selected.size < 2:
        return np.zeros((0, 2), np.int32)
    z0 = np.linspace(-z0_max, z0_max, n_z0)[:, None, None]
    cot = np.sinh(np.linspace(-eta_max, eta_max, n_eta))[None, :, None]  # dz/dr of the line
    barrel = table.is_barrel[selected][None, None, :]
    r_mid = 0.5 * (table.r_min + table.r_max)[selected][None, None, :]
    z_mid = 0.5 * (table.z_min + table.z_max)[selected][None, None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        # Crossing radius along the line (the path parameter: r grows along a straight line).
        r_cross = np.where(barrel, r_mid, (z_mid - z0) / cot)
        z_cross = z0 + r_cross * cot
    rmin = table.r_min[selected][None, None, :]
    rmax = table.r_max[selected][None, None, :]
    zmin = table.z_min[selected][None, None, :]
    zmax = table.z_max[selected][None, None, :]
    hit = np.where(barrel, (z_cross >= zmin) & (z_cross <= zmax),
                   (r_cross > 0) & (r_cross >= rmin) & (r_cross <= rmax))
    r_cross = np.where(hit, r_cross, np.inf).reshape(-1, selected.size)
    order = np.argsort(r_cross, axis=1, kind="stable")
    crossed = np.take_along_axis(np.isfinite(r_cross), order, axis=1)
    pairs = []
    for k in range(1, 2 + skip):
        ok = crossed[:, :-k] & crossed[:, k:]
        pairs.append(np.stack([order[:, :-k][ok], order[:, k:][ok]], axis=1))
    pairs = np.unique(np.concatenate(pairs), axis=0)
    return selected[pairs].astype(np.int32).reshape(-1, 2)


# ------------------------------------------------------------------------------------- learned map

def count_layer_pairs(true_pairs_layers: np.ndarray, n_layers: int) -> np.ndarray:
    """int64 [L, L] counts of (from, to) layer transitions; input int [T, 2] layer indices of the
    consecutive true hit pairs (see gnntrack.graphs.truth.true_pairs)."""
    counts = np.zeros((n_layers, n_layers), np.int64)
    if len(true_pairs_layers):
        np.add.at(counts, (true_pairs_layers[:, 0], true_pairs_layers[:, 1]), 1)
    return counts


def learned_layer_pairs(counts: np.ndarray, min_count: int = 1) -> np.ndarray:
    """Pairs whose two orientations together were seen >= min_count times, oriented the way most
    particles went (loopers add a few reverse transitions). Returns int32 [P, 2], sorted."""
    counts = np.asarray(counts)
    both = counts + counts.T
    np.fill_diagonal(both, 0)
    a, b = np.nonzero(np.triu(both) >= max(min_count, 1))
    forward = counts[a, b] >= counts[b, a]
    pairs = np.stack([np.where(forward, a, b), np.where(forward, b, a)], axis=1).astype(np.int32)
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))].reshape(-1, 2)


def save_layer_map(path: str | os.PathLike, table: LayerTable, counts: np.ndarray, *,
                   min_count: int = 1, meta: dict | None = None) -> Path:
    """Writes a learned layer map as JSON (TrackML ids, so it is independent of table order)."""
    pairs = learned_layer_pairs(counts, min_count)
    doc = {
        "format": LAYER_MAP_FORMAT,
        "min_count": int(min_count),
        **(meta or {}),
        "pairs": [
            {"from": [int(table.volume_id[a]), int(table.layer_id[a])],
             "to": [int(table.volume_id[b]), int(table.layer_id[b])],
             "count": int(counts[a, b] + counts[b, a])}
            for a, b in pairs],
    }
    path = Path(path)
    write_json_atomic(path, doc)
    return path


def load_layer_map(path: str | os.PathLike, table: LayerTable, min_count: int = 0) -> np.ndarray:
    """Reads a layer-map JSON -> int32 [P, 2] global layer indices in `table`.

    Raises InputError if the file is missing, not a layer map, or names layers unknown to `table`.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"layer map not found: {path}")
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"layer map {path} is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != LAYER_MAP_FORMAT or "pairs" not in doc:
        raise InputError(f"{path} is not a gnntrack layer map (expected format {LAYER_MAP_FORMAT!r})")
    try:
        rows = [(p["from"][0], p["from"][1], p["to"][0], p["to"][1], p.get("count", 0)) for p in doc["pairs"]]
    except (KeyError, IndexError, TypeError) as exc:
        raise InputError(f"layer map {path}: malformed pair entry ({exc!r})") from exc
    rows = np.array(rows, np.int64).reshape(-1, 5)
    rows = rows[rows[:, 4] >= min_count] if min_count else rows
    a = table.index(rows[:, 0], rows[:, 1])
    b = table.index(rows[:, 2], rows[:, 3])
    if (a < 0).any() or (b < 0).any():
        bad = rows[(a < 0) | (b < 0)][0]
        raise InputError(f"layer map {path} names a layer unknown to the detector: "
                         f"volume/layer {bad[0]}/{bad[1]} -> {bad[2]}/{bad[3]}")
    return np.stack([a, b], axis=1).astype(np.int32).reshape(-1, 2)


_GEOMETRIC_CACHE: dict = {}


def _table_fingerprint(table: LayerTable) -> bytes:
    return b"".join(np.ascontiguousarray(getattr(table, f.name)).tobytes()
                    for f in dataclasses.fields(table))


def resolve_layer_pairs(config, table: LayerTable) -> np.ndarray:
    """The layer pairs a graph config asks for ('geometric' or a layer-map path), restricted to
    the selected layers. int32 [P, 2]."""
    spec = config.layer_pairs
    if spec == "geometric":
        params = (config.selection, float(config.geometric_z0_max), float(config.geometric_eta_max),
                  int(config.geometric_skip))
        key = (_table_fingerprint(table), params)
        if key not in _GEOMETRIC_CACHE:  # a few ms of line sampling, repeated per event otherwise
            _GEOMETRIC_CACHE[key] = geometric_layer_pairs(table, params[0], z0_max=params[1],
                                                          eta_max=params[2], skip=params[3])
        return _GEOMETRIC_CACHE[key].copy()
    pairs = load_layer_map(spec, table)
    mask = table.selection_mask(config.selection)
    return pairs[mask[pairs[:, 0]] & mask[pairs[:, 1]]]
