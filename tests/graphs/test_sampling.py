"""Particle sampling: whole particles, the same graph as building from the kept hits, new draws per epoch."""

import numpy as np

from gnntrack.detector.luxe import default_luxe_config, simulate_luxe_event
from gnntrack.detector.simulate import event_rng
from gnntrack.graphs.build import build_graph
from gnntrack.graphs.config import luxe_graph_config
from gnntrack.graphs.sampling import particle_sample_epoch, sampled_nodes, subgraph
from gnntrack.io.event import Event


def _crossing(n=800):
    c = default_luxe_config()
    c.n_particles = n
    return simulate_luxe_event(event_rng(3, 0), c, event_id=1000)


def test_sample_is_the_graph_of_the_kept_hits():
    """Thinning the full graph gives the graph built from the kept hits alone: the same nodes and
    the same labelled edges (features to float32 rounding: numpy's vectorised maths may round a
    row differently in arrays of another length)."""
    event = _crossing()
    full = build_graph(event, luxe_graph_config())
    keep = sampled_nodes(full.particle_id, 0.3, np.random.default_rng(0))
    sample = subgraph(full, keep)
    rows = np.isin(event.hits.hit_id.to_numpy(), full.hit_id[keep])
    thinned = Event(event.event_id, event.hits[rows].reset_index(drop=True),
                    event.truth[rows].reset_index(drop=True), event.particles)
    direct = build_graph(thinned, luxe_graph_config())
    np.testing.assert_array_equal(sample.hit_id, direct.hit_id)
    np.testing.assert_allclose(sample.graph.nodes, direct.graph.nodes, rtol=1e-6, atol=1e-7)
    by_hits = lambda g: {(a, b): y for a, b, y in zip(g.hit_id[g.graph.senders].tolist(),  # noqa: E731
                                                       g.hit_id[g.graph.receivers].tolist(), g.y.tolist())}
    assert by_hits(sample) == by_hits(direct) and sample.n_edges > 100
    # whole particles: a particle is in the sample with all its hits or not at all
    pid = full.particle_id
    for p in np.unique(pid[keep & (pid > 0)]):
        assert keep[pid == p].all()
    # fewer hits around each true edge: purer than the full graph
    assert sample.y.mean() > full.y.mean()


def test_epochs_draw_anew_and_repeat():
    full = build_graph(_crossing(300), luxe_graph_config())
    e0, e0_again, e1 = (particle_sample_epoch([full], 0.5, seed=1, epoch=e)[0] for e in (0, 0, 1))
    np.testing.assert_array_equal(e0.hit_id, e0_again.hit_id)
    assert not np.array_equal(e0.hit_id, e1.hit_id)
    assert 0.3 < e0.n_nodes / full.n_nodes < 0.7
