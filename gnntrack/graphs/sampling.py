"""Particle sampling: a graph too large to train on, thinned by whole particles.

    graphs = particle_sample_epoch(full_graphs, fraction=0.3, seed=0, epoch=e)   # new draw per epoch

Each draw keeps a random `fraction` of the particles with all their hits, and the same fraction
of the noise hits, and every edge of the event graph between two kept hits. For graph builders
whose edges depend on the two hits only (the geometric and cone windows), that is exactly the
graph built from the kept hits, so no rebuilding is needed and tracks stay whole. A sampled graph
has fewer hits per unit area, hence fewer fake edges per true one: its purity is higher than the
full graph's, so class weights and score thresholds chosen on samples are to be checked on full
graphs.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import jraph
import numpy as np

from gnntrack.graphs.sections import induced_subgraph
from gnntrack.graphs.types import HitGraph


def sampled_nodes(particle_id: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """bool [N]: nodes of a random `fraction` of the particles (all their nodes) and of the same
    fraction of the noise nodes (particle_id 0, drawn one by one)."""
    particle_id = np.asarray(particle_id, np.int64)
    particles, inverse = np.unique(particle_id, return_inverse=True)
    chosen = rng.random(particles.size) < fraction
    keep = chosen[inverse]
    noise = particle_id == 0
    keep[noise] = rng.random(int(noise.sum())) < fraction
    return keep


def subgraph(hit_graph: HitGraph, keep: np.ndarray) -> HitGraph:
    """The HitGraph induced by the nodes `keep` (bool [N]): those nodes and every edge between two
    of them, with their labels, features and masks."""
    g = hit_graph.graph
    idx, senders, receivers, edges = induced_subgraph(np.asarray(keep, bool), g.senders, g.receivers)
    graph = jraph.GraphsTuple(
        nodes=g.nodes[idx], edges=None if g.edges is None else g.edges[edges], senders=senders, receivers=receivers,
        globals=g.globals, n_node=np.array([idx.size], np.int32), n_edge=np.array([edges.size], np.int32))
    pick = lambda a, rows: None if a is None else a[rows]  # noqa: E731
    return dataclasses.replace(
        hit_graph, graph=graph, y=hit_graph.y[edges], hit_id=hit_graph.hit_id[idx],
        particle_id=hit_graph.particle_id[idx], layer=hit_graph.layer[idx], edge_pt=hit_graph.edge_pt[edges],
        node_y=pick(hit_graph.node_y, idx), edge_mask=pick(hit_graph.edge_mask, edges))


def particle_sample_epoch(graphs: Sequence[HitGraph], fraction: float, seed: int, epoch: int) -> list[HitGraph]:
    """Every graph thinned to a random `fraction` of its particles (and noise); the draw depends
    on (seed, epoch, graph position) only, so an epoch is the same when run again."""
    return [subgraph(g, sampled_nodes(g.particle_id, fraction,
                                      np.random.default_rng(np.random.SeedSequence([int(seed), int(epoch), i]))))
            for i, g in enumerate(graphs)]
