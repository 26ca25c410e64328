"""Small synthetic datasets for tests and examples of the node and graph tasks (not physics)."""

from __future__ import annotations

import jraph
import numpy as np

from gnntrack.graphs.types import HitGraph


def random_hit_graph(rng: np.random.Generator, n_node: int, n_edge: int, *, event_id: int = 0,
                     noise_fraction: float = 0.3) -> HitGraph:
    """A random HitGraph whose noise hits (particle_id 0, a `noise_fraction` of the nodes) are
    told by their first feature's sign (positive for noise), for the node task's 'noise' target."""
    noise = rng.random(n_node) < noise_fraction
    nodes = rng.normal(size=(n_node, 3)).astype(np.float32)
    nodes[:, 0] = np.where(noise, 1.0, -1.0) * np.abs(nodes[:, 0]) + 0.1 * rng.normal(size=n_node)
    graph = jraph.GraphsTuple(
        nodes=nodes, edges=rng.normal(size=(n_edge, 2)).astype(np.float32),
        senders=rng.integers(0, n_node, n_edge).astype(np.int32),
        receivers=rng.integers(0, n_node, n_edge).astype(np.int32),
        n_node=np.array([n_node], np.int32), n_edge=np.array([n_edge], np.int32), globals=None)
    particle_id = np.where(noise, 0, 1 + rng.integers(0, 5, n_node)).astype(np.int64)
    return HitGraph(graph=graph, y=(rng.random(n_edge) < 0.3).astype(np.float32),
                    hit_id=np.arange(1, n_node + 1, dtype=np.int64), particle_id=particle_id,
                    layer=np.zeros(n_node, np.int32), edge_pt=np.zeros(n_edge, np.float32),
                    event_id=int(event_id))


def sign_graphs(n_graphs: int, seed: int = 0, *, min_nodes: int = 4, max_nodes: int = 12
                ) -> list[HitGraph]:
    """Graphs labelled by the sign of their nodes' mean first feature (graph_y [1] = 1.0 when
    positive): a graph classification a small network learns in a few dozen steps."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n_graphs):
        n = int(rng.integers(min_nodes, max_nodes + 1))
        g = random_hit_graph(rng, n, 3 * n, event_id=i, noise_fraction=0.0)
        shift = rng.choice([-1.0, 1.0])
        g.graph.nodes[:, 0] = shift + 0.5 * rng.normal(size=n).astype(np.float32)
        g.graph_y = np.array([float(g.graph.nodes[:, 0].mean() > 0)], np.float32)
        out.append(g)
    return out
