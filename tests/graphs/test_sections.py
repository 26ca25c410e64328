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


# ------------------------------------------------------------------------------ exact sections

def _luxe_sections(n_sections, hops, n_positrons=1000):
    from gnntrack.detector.luxe import default_luxe_config, simulate_luxe_event
    from gnntrack.detector.simulate import event_rng
    from gnntrack.graphs.config import luxe_graph_config

    c = default_luxe_config()
    c.n_particles = n_positrons
    event = simulate_luxe_event(event_rng(5, 0), c, event_id=1000)
    config = luxe_graph_config()
    full = build_graph(event, config)
    config.exact_sections, config.section_hops = n_sections, hops
    return full, build_event(event, config)[0]


def _scorer(full, n_iters):
    """Edge scores of a small random segment classifier; every graph is padded to one shape (one
    compilation; padding never changes real edges' logits)."""
    import jax
    import jraph

    from gnntrack.nn.segment_classifier import SegmentClassifier

    model = SegmentClassifier(hidden=8, n_iters=n_iters)
    params = jax.jit(model.init)(jax.random.PRNGKey(0), full.graph)
    apply = jax.jit(model.apply)

    def score(g):
        padded = jraph.pad_with_graphs(g.graph, full.n_nodes + 1, full.n_edges + 1, 2)
        return np.asarray(jax.nn.sigmoid(apply(params, padded)))[:g.n_edges]
    return score


def _core_score_error(full, sections, score):
    """Largest |section score - full-graph score| over every core edge, each edge once."""
    full_index = {e: i for i, e in enumerate(_edge_list(full))}
    full_scores = score(full)
    seen, worst = [], 0.0
    for g in sections:
        core = np.flatnonzero(g.edge_mask)
        edges = _edge_list(g)
        idx = np.array([full_index[edges[i]] for i in core], np.int64)
        seen.append(idx)
        worst = max(worst, float(np.max(np.abs(score(g)[core] - full_scores[idx]), initial=0.0)))
    seen = np.concatenate(seen)
    assert np.array_equal(np.sort(seen), np.arange(full.n_edges))   # every edge is core exactly once
    return worst


def _edge_list(g):
    return list(zip(g.hit_id[g.graph.senders].tolist(), g.hit_id[g.graph.receivers].tolist()))


def test_exact_sections_core_scores_equal_full_graph():
    """A 2-iteration segment classifier scores every core edge of a section as in the whole
    graph: equal to 1e-5 (float32 sums over a node's edges run in another order in the smaller
    graph, so not bitwise); with a halo one hop short of the iterations, some core edge is off by
    more than that tolerance."""
    full, sections = _luxe_sections(6, hops=2)
    assert len(sections) == 6 and [g.section for g in sections] == list(range(6))
    score = _scorer(full, n_iters=2)
    assert _core_score_error(full, sections, score) <= 1e-5
    overhead = sum(g.n_edges for g in sections) / full.n_edges
    assert 1.0 < overhead < 1.2
    _, short = _luxe_sections(6, hops=1)
    assert _core_score_error(full, short, score) > 2e-5


def test_exact_section_halo_left_out_of_the_loss(tmp_path):
    """Halo edges are False in the batch's edge_mask (what the loss and the scores count), and the
    section's edge_mask survives the graph file."""
    from gnntrack.graphs.batching import batch_iterator, default_batching_config
    from gnntrack.graphs.store import load_graph, save_graph

    _, sections = _luxe_sections(4, hops=2, n_positrons=1000)
    g = max(sections, key=lambda s: int((~s.edge_mask).sum()))   # the one with the largest halo
    assert 0 < g.edge_mask.sum() < g.n_edges
    back = load_graph(save_graph(g, tmp_path / "s.npz"))
    np.testing.assert_array_equal(back.edge_mask, g.edge_mask)
    config = default_batching_config()
    config.graphs_per_step = 2
    config.shuffle = False
    other = sections[0] if g is not sections[0] else sections[1]
    batch = next(batch_iterator([other, g], config, 1, seed=0, epoch=0))
    assert batch.edge_mask.sum() == other.edge_mask.sum() + g.edge_mask.sum()


def test_exact_sections_need_the_cone():
    from gnntrack.errors import ConfigError

    config = default_graph_config()
    config.exact_sections = 4
    with pytest.raises(ConfigError, match="graph.exact_sections slices along the cone's bending slope"):
        prepare(config)
