"""Edge filter: a cheap per-edge classifier that prunes a constructed graph before the GNN.

    config.filter.path = "filter.npz"          # from fit.fit_filter; threshold: config.filter.threshold
    graphs, stats = build_event(event, config)  # stats["before_filter"]: the counts before pruning

A small MLP scores each edge from [x_sender, x_receiver, edge features] (the hit inputs of
metric_learning.hit_inputs for both hits, and dr, dphi, dz, dR, a clipped dphi/dr); edges scoring
below `filter.threshold` are dropped. Scoring runs with numpy in chunks of edges, so the memory
stays bounded on graphs with millions of edges.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gnntrack.config import config_to_dict
from gnntrack.errors import InputError
from gnntrack.graphs import features as feats
from gnntrack.graphs.metric_learning import hit_input_names, hit_inputs
from gnntrack.graphs.mlp import apply_mlp, load_mlp_cached, save_mlp

KIND = "filter"
EDGE_INPUTS = ("dr", "dphi", "dz", "dR", "phi_slope")
# dphi/dr (rad/m) is ~ 1 / (2 R) on a true segment, up to a few rad/m at the lowest pT; across a
# tiny dr it is huge and says nothing more: clip it to O(1) inputs.
PHI_SLOPE_CLIP = 10.0
CHUNK_EDGES = 1 << 18


def edge_inputs(nodes, senders: np.ndarray, receivers: np.ndarray, x: np.ndarray | None = None) -> np.ndarray:
    """float32 [E, 2 F + 5]: hit inputs of sender and receiver, then EDGE_INPUTS
    (dr, dz / 1000 mm, dphi / pi, dR, clip(dphi/dr in rad/m, +-10) / 10). `x`: hit_inputs(nodes)
    when already computed."""
    x = hit_inputs(nodes) if x is None else x
    edge = feats.edge_features(EDGE_INPUTS, senders, receivers, nodes.r, nodes.phi, nodes.z, nodes.eta)
    edge[:, -1] = np.clip(edge[:, -1], -PHI_SLOPE_CLIP, PHI_SLOPE_CLIP) / PHI_SLOPE_CLIP
    return np.concatenate([x[senders], x[receivers], edge], axis=1)


def edge_scores(params, nodes, senders: np.ndarray, receivers: np.ndarray) -> np.ndarray:
    """float32 [E] filter probabilities, computed in chunks of CHUNK_EDGES edges."""
    x = hit_inputs(nodes)
    out = np.empty(len(senders), np.float32)
    for i in range(0, len(senders), CHUNK_EDGES):
        logit = apply_mlp(params, edge_inputs(nodes, senders[i:i + CHUNK_EDGES], receivers[i:i + CHUNK_EDGES], x))
        out[i:i + CHUNK_EDGES] = 1.0 / (1.0 + np.exp(-logit[:, 0]))
    return out


def filter_edges(nodes, senders: np.ndarray, receivers: np.ndarray, config) -> np.ndarray:
    """bool [E]: edges the config's filter keeps (score >= filter.threshold)."""
    params, meta = load_filter(config.filter.path)
    if tuple(meta["inputs"]) != hit_input_names(config):
        raise InputError(f"filter {config.filter.path} was trained on hit inputs {meta['inputs']}, this config "
                         f"gives {list(hit_input_names(config))}: use the same graph.features.node as in training")
    return edge_scores(params, nodes, senders, receivers) >= float(config.filter.threshold)


def save_filter(path, params, config) -> Path:
    """Writes a filter trained with graph config `config`, with its hit-input names, atomically."""
    return save_mlp(path, params, {"kind": KIND, "inputs": list(hit_input_names(config)),
                                   "graph_config": config_to_dict(config)})


def load_filter(path) -> tuple[list, dict]:
    """(params, meta) of a filter file; read once per process while the file is unchanged."""
    return load_mlp_cached(path, KIND)
