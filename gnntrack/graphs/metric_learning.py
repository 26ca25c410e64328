"""Metric-learning graph construction (the Exa.TrkX embedding stage), numpy on the host.

    config.method = "metric"; config.metric.embedding = "embedding.npz"   # from fit.fit_embedding
    graphs = build_event_graphs(event, config)

A small MLP maps each hit to a point in a `metric.dim`-dimensional space where hits that follow
each other on a particle's path lie close together (it is trained on true segments against
random and hard negative pairs, see gnntrack.graphs.fit). The graph joins every hit to the hits
within `metric.radius` of it in that space, at most `metric.k_max` of them (the nearest, or
nearly so with `metric.eps` > 0), found with a KD-tree (scipy.spatial.cKDTree: O(N log N)
build, one bounded k-nearest query per hit, no N^2 step). Pairs on one layer are dropped (a true segment never joins two hits of one layer),
each pair is kept once, and edges point outward: the sender is the hit closer to the origin
(sqrt(r^2 + z^2)), as a particle from the luminous region meets its hits.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.spatial import cKDTree

from gnntrack.errors import ConfigError, InputError
from gnntrack.graphs import features as feats
from gnntrack.graphs.config import cell_feature_names
from gnntrack.config import config_to_dict
from gnntrack.graphs.mlp import apply_mlp, load_mlp_cached, save_mlp
from gnntrack.graphs.types import R_SCALE_MM, Z_SCALE_MM

KIND = "embedding"
# Hit inputs of the embedding: position, with phi as cos / sin of k phi for a few harmonics k
# (no jump at +-pi, and the higher harmonics resolve the small dphi between neighbouring hits of
# a track that a tanh MLP hardly resolves from cos phi, sin phi alone), pseudorapidity, and the
# cell features that graph.features.node names (the cluster's size, charge and shape).
PHI_HARMONICS = (1, 2, 4)
POSITION_INPUTS = ("r", "z", "eta") + tuple(f"{f}_{k}phi" for k in PHI_HARMONICS for f in ("cos", "sin"))
ETA_SCALE = 3.0


def hit_input_names(config) -> tuple[str, ...]:
    """Names of the columns `hit_inputs` gives for the nodes a graph config selects: the position
    inputs, then the cell features among its node features, in their order."""
    return POSITION_INPUTS + cell_feature_names(config)


def hit_inputs(nodes) -> np.ndarray:
    """float32 [N, F] per-hit inputs, O(1) scaled: r / 1000 mm, z / 1000 mm, eta / 3, cos and
    sin of k phi for k in PHI_HARMONICS, then the cell features the nodes carry (cells per hit / 10,
    the others as they are: see gnntrack.graphs.features)."""
    columns = [nodes.r / R_SCALE_MM, nodes.z / Z_SCALE_MM, nodes.eta / ETA_SCALE]
    for k in PHI_HARMONICS:
        columns += [np.cos(k * nodes.phi), np.sin(k * nodes.phi)]
    for name, values in (nodes.cells or {}).items():
        columns.append(values / (feats.CELL_COUNT_SCALE if name == "cell_count" else 1.0))
    return np.stack(columns, axis=1).astype(np.float32).reshape(len(nodes.r), len(columns))


def embed(params, x: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """float32 [N, dim] embedding of inputs [N, F], in row chunks (bounded temporary memory)."""
    out = [apply_mlp(params, x[i:i + chunk]) for i in range(0, len(x), chunk)]
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, params[-1][1].size), np.float32)


QUERY_BLOCK = 4096  # hits per KD-tree query (the answers are the same for any block size)


def radius_edges(emb: np.ndarray, layer: np.ndarray, dist0: np.ndarray, radius: float, k_max: int,
                 eps: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Pairs within `radius` in the embedding, each hit's k_max nearest at most.

    Args:
      emb: float [N, D] embedding; layer: int [N]; dist0: float [N] distance from the origin
        (orients the edges); radius > 0; k_max >= 1; eps >= 0: approximate search (cKDTree's
        eps: the i-th neighbour returned is within (1 + eps) times the true i-th distance; still
        within `radius`), much faster in 8-12 dimensions.
    Returns:
      senders, receivers int32 [E]: distinct pairs on different layers, sender the hit with the
      smaller dist0, sorted by (min, max) node index.
    """
    n = len(emb)
    if n < 2:
        return np.zeros(0, np.int32), np.zeros(0, np.int32)
    k = min(int(k_max) + 1, n)  # +1: a hit is its own nearest neighbour (dropped: same layer)
    tree = cKDTree(emb)
    padded_layer = np.append(layer, 0)  # index n = no neighbour within the radius: masked below
    senders, neighbours = [], []
    # Queried in row blocks: the [block, k] answers stay in cache and are reduced to the kept pairs
    # at once, instead of [N, k] float64 distances and int64 indices (~16 N k bytes) in memory.
    for start in range(0, n, QUERY_BLOCK):
        _, nbr = tree.query(emb[start:start + QUERY_BLOCK], k=k, distance_upper_bound=float(radius),
                            eps=float(eps))
        keep = (nbr < n) & (padded_layer[nbr] != layer[start:start + len(nbr), None])
        senders.append(np.repeat(np.arange(start, start + len(nbr), dtype=np.int32), keep.sum(axis=1)))
        neighbours.append(nbr[keep].astype(np.int32))
    a, b = np.concatenate(senders), np.concatenate(neighbours)
    # Each pair once (found from both ends or one): a sparse matrix's row bucketing and per-row
    # duplicate merge is linear in the pairs, where sorting int64 pair keys is not.
    m = sp.csr_matrix((np.ones(a.size, np.int8), (np.minimum(a, b), np.maximum(a, b))), shape=(n, n))
    m.sum_duplicates()
    lo = np.repeat(np.arange(n, dtype=np.int32), np.diff(m.indptr))
    hi = m.indices.astype(np.int32, copy=False)
    outward = dist0[lo] <= dist0[hi]
    return np.where(outward, lo, hi), np.where(outward, hi, lo)


def save_embedding(path, params, config) -> Path:
    """Writes an embedding trained with graph config `config`, with its input names, atomically."""
    return save_mlp(path, params, {"kind": KIND, "inputs": list(hit_input_names(config)),
                                   "graph_config": config_to_dict(config)})


def load_embedding(path) -> tuple[list, dict]:
    """(params, meta) of an embedding file; read once per process while the file is unchanged."""
    return load_mlp_cached(path, KIND)


def check_embedding(config) -> tuple[list, dict]:
    """The embedding a metric config names, checked to exist and be readable (ConfigError when
    graph.metric.embedding is empty, InputError for a bad file)."""
    path = str(config.metric.embedding)
    if not path:
        raise ConfigError("graph.method='metric' needs graph.metric.embedding: the embedding file "
                          "written by gnntrack.graphs.fit.fit_embedding")
    return load_embedding(path)


def metric_edges(nodes, layer_pairs, config) -> tuple[np.ndarray, np.ndarray]:
    """The metric-learning graph's edges (see the module docstring): senders, receivers int32 [E].
    `layer_pairs` is unused (the signature of the builder's other edge searches)."""
    params, meta = check_embedding(config)
    names = hit_input_names(config)
    if tuple(meta["inputs"]) != names:
        raise InputError(f"embedding {config.metric.embedding} was trained on inputs {meta['inputs']}, "
                         f"these hits give {list(names)}: cell inputs need the cells table in both "
                         "training and graph events (the same cell_* names in graph.features.node)")
    emb = embed(params, hit_inputs(nodes))
    senders, receivers = radius_edges(emb, nodes.layer, np.hypot(nodes.r, nodes.z),
                                      float(config.metric.radius), int(config.metric.k_max),
                                      float(config.metric.get("eps", 0.0)))
    max_edges = int(config.max_edges)
    if max_edges and len(senders) > max_edges:
        raise InputError(f"graph has {len(senders)} edges > max_edges={max_edges}; lower "
                         "graph.metric.radius or graph.metric.k_max, or raise graph.max_edges")
    return senders, receivers
