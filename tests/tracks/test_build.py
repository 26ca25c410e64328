"""Track building on hand-made graphs: a clean track, a branching one resolved by the
walkthrough, singletons; the vectorised walkthrough equals a sequential greedy walk."""

import jraph
import numpy as np
import pytest

from gnntrack.graphs.types import HitGraph
from gnntrack.tracks import build as B


def partition(labels):
    """Set of frozensets of node indices: label values are arbitrary."""
    labels = np.asarray(labels)
    return {frozenset(np.flatnonzero(labels == v).tolist()) for v in np.unique(labels)}


def test_clean_track_and_singletons():
    # 0-1-2-3 a clean track; 4 only reached by a low score; 5 isolated
    s, r = np.array([0, 1, 2, 1]), np.array([1, 2, 3, 4])
    sc = np.array([0.9, 0.8, 0.95, 0.2])
    for method in B.METHODS:
        labels = B.build_tracks(6, s, r, sc, method=method, cut=0.5)
        assert labels.dtype == np.int64 and labels.shape == (6,)
        assert partition(labels) == {frozenset({0, 1, 2, 3}), frozenset({4}), frozenset({5})}


def test_branching_component_is_resolved_by_walkthrough():
    # main track 0-1-2-3; a branch 1->5->6 (weaker at its start); a stray hit 4->2
    s = np.array([0, 1, 2, 1, 5, 4])
    r = np.array([1, 2, 3, 5, 6, 2])
    sc = np.array([0.9, 0.9, 0.9, 0.6, 0.8, 0.7])
    cc = B.cc_tracks(7, s, r, sc, cut=0.5)
    assert partition(cc) == {frozenset(range(7))}  # CC merges everything that touches
    walk = B.walkthrough_tracks(7, s, r, sc, cut=0.5, attach_min_edges=0)
    assert partition(walk) == {frozenset({0, 1, 2, 3}), frozenset({5, 6}), frozenset({4})}
    # by default the left-over hit 4 joins the track it has an edge above the cut to
    walk = B.walkthrough_tracks(7, s, r, sc, cut=0.5)
    assert partition(walk) == {frozenset({0, 1, 2, 3, 4}), frozenset({5, 6})}


def test_walkthrough_takes_next_best_continuation_when_best_is_taken():
    # a (0) and b (1) both want c (2); b's edge is better; a continues to d (3) instead
    s, r = np.array([0, 1, 0]), np.array([2, 2, 3])
    sc = np.array([0.9, 0.95, 0.8])
    keep = B.walkthrough_edges(4, s, r, sc, cut=0.5)
    assert keep.tolist() == [1, 2]
    assert partition(B.walkthrough_tracks(4, s, r, sc)) == {frozenset({1, 2}), frozenset({0, 3})}


def test_empty_and_no_edges():
    assert B.walkthrough_tracks(0, [], [], []).shape == (0,)
    labels = B.cc_tracks(3, [], [], [])
    assert sorted(labels.tolist()) == [0, 1, 2]
    with pytest.raises(ValueError, match="method"):
        B.build_tracks(3, [], [], [], method="magic")
    with pytest.raises(ValueError, match="endpoints"):
        B.cc_tracks(2, [0], [2], [0.9])


def test_duplicate_hits_on_one_layer_keep_the_track_whole():
    # h1 -> (d1 | d2) -> h3 -> h4: two hits of one particle on a layer; the edges into and out of
    # the duplicates disagree on which one is best. A pairwise matching would cut the track in two.
    h1, d1, d2, h3, h4 = range(5)
    s = np.array([h1, h1, d1, d2, h3])
    r = np.array([d1, d2, h3, h3, h4])
    sc = np.array([0.95, 0.90, 0.80, 0.90, 0.9])
    kept = B.walkthrough_edges(5, s, r, sc)
    assert kept.tolist() == [0, 2, 4]                              # the chain h1-d1-h3-h4
    no_attach = B.walkthrough_tracks(5, s, r, sc, attach_min_edges=0)
    assert partition(no_attach) == {frozenset({h1, d1, h3, h4}), frozenset({d2})}
    # d2 has two edges above the cut into that track: it is put back
    assert partition(B.walkthrough_tracks(5, s, r, sc)) == {frozenset({h1, d1, d2, h3, h4})}
    assert partition(B.walkthrough_tracks(5, s, r, sc, attach_min_edges=2)) == {frozenset({h1, d1, d2, h3, h4})}


def test_duplicate_first_hits_both_join():
    # two hits of a particle on its first layer both start walks; the loser is put back
    s, r = np.array([0, 1, 2]), np.array([2, 2, 3])
    sc = np.array([0.9, 0.8, 0.9])
    assert partition(B.walkthrough_tracks(4, s, r, sc)) == {frozenset({0, 1, 2, 3})}
    assert partition(B.walkthrough_tracks(4, s, r, sc, attach_min_edges=2)) == {frozenset({0, 2, 3}),
                                                                               frozenset({1})}


def test_attach_needs_two_edges_into_one_track():
    # track 0-1-2; hit 3 has one edge into it (stays alone), hit 4 has two (joins)
    labels = np.array([0, 0, 0, 1, 2])
    s = np.array([0, 1, 3, 0, 4])
    r = np.array([1, 2, 1, 4, 2])
    sc = np.array([0.9, 0.9, 0.8, 0.7, 0.6])
    out = B.attach_leftover_hits(labels, s, r, sc, cut=0.5, min_edges=2)
    assert out.tolist() == [0, 0, 0, 1, 0]
    assert B.attach_leftover_hits(labels, s, r, sc, cut=0.65, min_edges=2).tolist() == [0, 0, 0, 1, 2]
    assert B.attach_leftover_hits(labels, s, r, sc, cut=0.5, min_edges=1).tolist() == [0, 0, 0, 0, 0]
    # a hit between two tracks joins the one it has more edges to, then the better score
    labels = np.array([0, 0, 1, 1, 2])
    s, r, sc = np.array([0, 4, 4]), np.array([4, 1, 3]), np.array([0.6, 0.7, 0.9])
    assert B.attach_leftover_hits(labels, s, r, sc)[4] == 0    # two edges to track 0
    assert B.attach_leftover_hits(labels, s[1:], r[1:], sc[1:])[4] == 1  # one each: best score


def test_later_better_continuation_takes_the_hit_over():
    # a stray inner hit 4 reaches hit 2 one round before the main track's walk (0->1->2) does;
    # the main track's better edge takes 2 over and 4 is left alone
    s, r = np.array([0, 1, 4, 2]), np.array([1, 2, 2, 3])
    sc = np.array([0.9, 0.9, 0.7, 0.9])
    assert partition(B.walkthrough_tracks(5, s, r, sc, attach_min_edges=0)) == {frozenset({0, 1, 2, 3}),
                                                                                  frozenset({4})}


@pytest.mark.parametrize("seed", range(5))
def test_walkthrough_invariants_on_random_graphs(seed):
    rng = np.random.default_rng(seed)
    n, e = 80, 240
    s = rng.integers(0, n, e)
    r = rng.integers(0, n, e)
    if seed % 2:  # outward (acyclic) graphs like hit graphs; odd seeds keep cycles as well
        s, r = np.minimum(s, r), np.maximum(s, r)
    keep = rng.random(e) > 0.02
    s, r = s[keep & (s != r)], r[keep & (s != r)]
    sc = np.round(rng.random(s.size), 2)  # rounding creates ties
    kept = B.walkthrough_edges(n, s, r, sc, cut=0.3)
    assert np.all(sc[kept] >= 0.3)
    # at most one out- and one in-edge per node
    assert np.bincount(s[kept], minlength=n).max() <= 1 and np.bincount(r[kept], minlength=n).max() <= 1
    # deterministic, and a refinement of connected components
    np.testing.assert_array_equal(kept, B.walkthrough_edges(n, s, r, sc, cut=0.3))
    cc = B.cc_tracks(n, s, r, sc, cut=0.3)
    for part in partition(B.walkthrough_tracks(n, s, r, sc, cut=0.3)):
        assert len({cc[i] for i in part}) == 1


def test_walkthrough_equals_cc_on_disjoint_chains():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 9, 30)
    starts = np.r_[0, np.cumsum(lengths)[:-1]]
    s = np.concatenate([np.arange(a, a + k - 1) for a, k in zip(starts, lengths)])
    perm = rng.permutation(s.size)
    s, r = s[perm], s[perm] + 1
    sc = rng.uniform(0.5, 1.0, s.size)
    n = int(lengths.sum())
    assert partition(B.walkthrough_tracks(n, s, r, sc)) == partition(B.cc_tracks(n, s, r, sc))


def _hit_graph(hit_id, senders, receivers, section):
    n, e = len(hit_id), len(senders)
    g = jraph.GraphsTuple(nodes=np.zeros((n, 3), np.float32), edges=np.zeros((e, 1), np.float32),
                          senders=np.asarray(senders, np.int32), receivers=np.asarray(receivers, np.int32),
                          n_node=np.array([n]), n_edge=np.array([e]), globals=None)
    return HitGraph(graph=g, y=np.ones(e, np.float32), hit_id=np.asarray(hit_id, np.int64),
                    particle_id=np.asarray(hit_id, np.int64) // 10, layer=np.zeros(n, np.int32),
                    edge_pt=np.zeros(e, np.float32), event_id=7, section=section)


def test_merge_sections_shares_hits_and_keeps_best_duplicate_edge():
    g0 = _hit_graph([10, 11, 12], [0, 1], [1, 2], 0)      # 10->11->12
    g1 = _hit_graph([12, 11, 13], [1, 0], [0, 2], 1)      # 11->12 (again), 12->13
    ev = B.merge_section_graphs([g0, g1], [np.array([0.6, 0.4]), np.array([0.9, 0.7])])
    assert ev.hit_id.tolist() == [10, 11, 12, 13]
    edges = {(int(ev.hit_id[a]), int(ev.hit_id[b])): float(c)
             for a, b, c in zip(ev.senders, ev.receivers, ev.scores)}
    assert edges == {(10, 11): 0.6, (11, 12): 0.9, (12, 13): 0.7}
    assert ev.particle_id.tolist() == [1, 1, 1, 1]
    with pytest.raises(ValueError, match="scores"):
        B.merge_section_graphs([g0], [np.zeros(5)])


def test_event_track_ids_gives_every_hit_a_track():
    event_hits = np.array([5, 1, 9, 3, 7, 2])
    node_hits = np.array([3, 1, 7])
    node_labels = np.array([4, 4, 0])
    tid = B.event_track_ids(event_hits, node_hits, node_labels)
    assert tid.shape == (6,)
    assert tid[1] == tid[3] and tid[4] != tid[1]           # hits 1 and 3 share a track, 7 alone
    others = tid[[0, 2, 5]]
    assert len(set(others.tolist())) == 3 and not set(others.tolist()) & set(tid[[1, 3, 4]].tolist())
    assert sorted(set(tid.tolist())) == list(range(len(set(tid.tolist()))))  # dense ids
    assert B.event_track_ids(np.array([4, 2]), np.zeros(0, np.int64), np.zeros(0, np.int64)).tolist() == [0, 1]
