"""Sections: n_phi x n_eta graphs with overlap cover every edge of the event graph."""

import numpy as np
import pytest

from tests.graphs.graph_events import random_event
from gnntrack.graphs.build import build_event, build_graph, prepare
from gnntrack.graphs.config import default_graph_config
from gnntrack.graphs.layer_map import trackml_layer_table

LAYERS = trackml_layer_table()


def _edges_by_hit(g):
    return set(zip(g.hit_id[g.graph.senders].tolist(), g.hit_id[g.graph.receivers].tolist()))


@pytest.mark.parametrize("n_phi,n_eta,overlap", [(8, 2, 0.0), (4, 3, 0.05), (3, 1, 0.2)])
def test_sections_cover_all_edges(n_phi, n_eta, overlap):
    event = random_event(300, n_noise=300, seed=11, pt_range=(0.3, 3.0))
    config = default_graph_config()
    full = build_graph(event, config, detector=LAYERS)
    config.n_phi_sections, config.n_eta_sections = n_phi, n_eta
    config.section_overlap_phi = config.section_overlap_eta = overlap
    graphs, stats = build_event(event, config, *prepare(config, LAYERS)[1:])
    assert len(graphs) == n_phi * n_eta and [g.section for g in graphs] == list(range(n_phi * n_eta))
    full_edges = _edges_by_hit(full)
    full_y = dict(zip(zip(full.hit_id[full.graph.senders].tolist(), full.hit_id[full.graph.receivers].tolist()),
                      full.y.tolist()))
    union = set()
    for g in graphs:
        e = _edges_by_hit(g)
        assert e <= full_edges
        assert all(full_y[k] == v for k, v in zip(zip(g.hit_id[g.graph.senders].tolist(),
                                                      g.hit_id[g.graph.receivers].tolist()), g.y.tolist()))
        assert g.graph.nodes.shape[0] == len(g.hit_id) and g.graph.senders.max(initial=-1) < len(g.hit_id)
        union |= e
    assert union == full_edges
    # Every hit is in at least one section; stats describe the whole event.
    assert set(np.concatenate([g.hit_id for g in graphs]).tolist()) == set(full.hit_id.tolist())
    assert stats["edges"] == full.n_edges
    if overlap == 0:  # without overlap the home cells partition the hits
        assert sum(len(set(g.hit_id.tolist())) for g in graphs) >= full.n_nodes


def test_rotated_sections_centre_phi():
    event = random_event(200, seed=12)
    config = default_graph_config()
    config.n_phi_sections = 4
    config.section_overlap_phi = 0.0
    graphs, _ = build_event(event, config, *prepare(config, LAYERS)[1:])
    for g in graphs:
        # node phi feature relative to the section centre: |phi| <= pi/4 (+ receivers outside)
        phi = g.graph.nodes[:, 1] * np.pi
        assert np.median(np.abs(phi)) < np.pi / 4
    config.rotate_sections = False
    graphs2, _ = build_event(event, config, *prepare(config, LAYERS)[1:])
    assert np.allclose(graphs2[0].graph.edges, graphs[0].graph.edges)  # edges are rotation invariant
    assert not np.allclose(graphs2[1].graph.nodes[:, 1], graphs[1].graph.nodes[:, 1])
