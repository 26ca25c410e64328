"""Bucket ladder, padding, like-sized dealing and data order (host-side numpy only)."""

import itertools

import numpy as np
import pytest

from gnntrack.errors import ConfigError, InputError
from gnntrack.graphs import batching as B


def _graphs(sizes, seed=0):
    rng = np.random.default_rng(seed)
    return [B.synthetic_hit_graph(rng, int(n), int(e), event_id=i) for i, (n, e) in enumerate(sizes)]


def _cfg(**kw):
    cfg = B.default_batching_config()
    for k, v in kw.items():
        cfg[k] = v
    return cfg


def _typical_sizes(n_graphs, seed=0):
    """Event-like size distribution: edges ~ 20k ± 15%, about 2.3 edges per node."""
    rng = np.random.default_rng(seed)
    edges = np.clip(rng.normal(20000, 3000, n_graphs), 8000, None).astype(np.int64)
    nodes = (edges / rng.normal(2.3, 0.1, n_graphs)).astype(np.int64)
    return nodes, edges


def _simulate_epochs(nodes, edges, cfg, n_devices, ladder, epochs, seed=0):
    """Utilisation and shapes from sizes alone (same steps, dealing and bucket choice as
    batch_iterator), on epochs the ladder was not fitted to."""
    stats = B.PaddingStats()
    shapes_per_epoch = []
    for epoch in range(100, 100 + epochs):
        shapes = set()
        for ids in B.epoch_steps(edges, cfg.graphs_per_step, seed, epoch, sort_window=cfg.sort_window):
            parts = B.deal_like_sized(edges[ids], n_devices)
            de = np.array([edges[ids[p]].sum() for p in parts])
            dn = np.array([nodes[ids[p]].sum() for p in parts])
            bucket = ladder.select(int(dn.max()), int(de.max()))
            stats.real_edges += int(de.sum())
            stats.padded_edges += n_devices * bucket.n_edge
            shapes.add(bucket)
        shapes_per_epoch.append(shapes)
    return stats, shapes_per_epoch


@pytest.mark.parametrize("method", B.LADDERS)
@pytest.mark.parametrize("n_devices,per_step", [(1, 1), (4, 8), (2, 16)])
def test_ladder_properties_and_utilisation_on_typical_sizes(n_devices, per_step, method):
    nodes, edges = _typical_sizes(400)
    cfg = _cfg(graphs_per_step=per_step, ladder=method)
    ladder = B.make_ladder((nodes, edges), cfg, n_devices)
    e = np.array([b.n_edge for b in ladder.buckets])
    n = np.array([b.n_node for b in ladder.buckets])
    assert 1 <= len(e) <= cfg.max_buckets
    assert np.all(e % 64 == 0) and np.all(n % 8 == 0)
    assert np.all(np.diff(e) > 0) and np.all(np.diff(n) >= 0)
    if method == "geometric":  # ratio <= 1.25 (up to the rounding to 64)
        assert np.all(e[1:] <= e[:-1] * cfg.max_ratio + 64)
    # on epochs the ladder was not fitted to
    stats, shapes = _simulate_epochs(nodes, edges, cfg, n_devices, ladder, epochs=6)
    assert stats.edge_utilisation >= 0.90, stats.edge_utilisation
    assert len(set().union(*shapes)) <= 8
    assert ladder.n_added == 0  # fixed after the first epoch: no new shapes ever


def test_optimal_rungs_match_brute_force():
    rng = np.random.default_rng(5)
    for _ in range(20):
        sizes = rng.integers(1, 1500, int(rng.integers(3, 30)))
        k = int(rng.integers(1, 5))
        got = B.optimal_rungs(sizes, k, 64)
        cand = np.unique(B._round_up(sizes, 64))

        def cost(r):
            r = np.sort(np.asarray(r))
            return r[np.searchsorted(r, sizes)].sum()
        best = min(cost(c + (cand[-1],)) for t in range(k)
                   for c in itertools.combinations(cand[:-1], t))
        assert len(got) <= k and got[-1] == cand[-1] and cost(got) == best


def test_sort_window_groups_like_sized_graphs_and_cuts_padding():
    nodes, edges = _typical_sizes(256, seed=4)
    plain = _cfg(graphs_per_step=4)
    sorted_cfg = _cfg(graphs_per_step=4, sort_window=16)
    steps = B.epoch_steps(edges, 4, seed=0, epoch=0, sort_window=16)
    again = B.epoch_steps(edges, 4, seed=0, epoch=0, sort_window=16)
    assert all(np.array_equal(a, b) for a, b in zip(steps, again))  # reproducible
    assert sorted(np.concatenate(steps).tolist()) == list(range(256))
    spread = np.mean([edges[s].max() / edges[s].min() for s in steps])
    assert spread < np.mean([edges[s].max() / edges[s].min()
                             for s in B.epoch_steps(edges, 4, seed=0, epoch=0)])
    utils = []
    for cfg in (plain, sorted_cfg):
        ladder = B.make_ladder((nodes, edges), cfg, 4)
        utils.append(_simulate_epochs(nodes, edges, cfg, 4, ladder, epochs=3)[0].edge_utilisation)
    assert utils[1] > utils[0] + 0.05 and utils[1] >= 0.9


def test_ladder_top_covers_largest_possible_device_batch():
    nodes, edges = _typical_sizes(100, seed=3)
    cfg = _cfg(graphs_per_step=8)
    ladder = B.make_ladder((nodes, edges), cfg, 4)
    top = ladder.buckets[-1]
    k = 2  # graphs per device
    assert top.n_edge >= np.sort(edges)[-k:].sum()
    assert top.n_node > np.sort(nodes)[-k:].sum()


def test_geometric_rungs_ratio_bounds():
    rungs = B.geometric_rungs(1000, 100000, 8, 1.05, 1.25, 64)
    assert len(rungs) == 8  # range too wide for 8 rungs at 1.25: the smallest takes the rest
    assert np.all(rungs[1:] / rungs[:-1] <= 1.25 + 64 / rungs[:-1])
    narrow = B.geometric_rungs(9000, 10000, 8, 1.05, 1.25, 64)
    assert len(narrow) <= 4 and narrow[-1] >= 10000 and narrow[0] <= 9000 + 64


def test_oversize_graph_error_or_new_bucket():
    graphs = _graphs([(20, 100), (20, 120), (200, 5000)])
    small = _cfg(graphs_per_step=1, buckets=((64, 256),), oversize="error", shuffle=False)
    ladder = B.make_ladder(graphs, small, 1)
    with pytest.raises(InputError, match="largest bucket"):
        list(B.batch_iterator(graphs, small, 1, ladder=ladder))
    grow = _cfg(graphs_per_step=1, buckets=((64, 256),), oversize="new_bucket", shuffle=False)
    ladder = B.make_ladder(graphs, grow, 1)
    batches = list(B.batch_iterator(graphs, grow, 1, ladder=ladder))
    assert ladder.n_added == 1 and len(ladder.buckets) == 2
    big = batches[2]
    assert big.bucket.n_edge >= 5000 and big.bucket.n_node > 200
    # never truncated: every real edge is there
    assert int(big.edge_mask.sum()) == 5000 and np.array_equal(big.y[0, :5000], graphs[2].y)


def test_bad_config_values():
    graphs = _graphs([(10, 50)] * 4)
    with pytest.raises(ConfigError, match="oversize"):
        B.make_ladder(graphs, _cfg(oversize="truncate"), 1)
    with pytest.raises(ConfigError, match="graphs_per_step"):
        B.make_ladder(graphs, _cfg(graphs_per_step=0), 1)
    with pytest.raises(InputError, match="graphs_per_step"):
        next(B.batch_iterator(graphs, _cfg(graphs_per_step=8), 1))


def test_like_sized_dealing_balances_devices():
    rng = np.random.default_rng(1)
    edges = rng.integers(1000, 30000, size=32)
    parts = B.deal_like_sized(edges, 4)
    assert sorted(np.concatenate(parts).tolist()) == list(range(32))
    assert {len(p) for p in parts} == {8}
    loads = np.array([edges[p].sum() for p in parts])
    naive = np.array([edges[d::4].sum() for d in range(4)])  # round-robin in data order
    assert loads.max() - loads.min() <= edges.max()
    assert loads.max() / loads.mean() < 1.02
    assert loads.max() - loads.min() < naive.max() - naive.min()
    # uneven split: counts differ by at most one
    parts = B.deal_like_sized(edges[:7], 4)
    assert sorted(len(p) for p in parts) == [1, 2, 2, 2]


def test_padding_masks_labels_and_round_trip():
    graphs = _graphs([(13, 40), (7, 21), (30, 90), (5, 9), (11, 33)], seed=2)
    cfg = B.eval_config(_cfg(graphs_per_step=4, sort_window=3))
    assert not cfg.shuffle and not cfg.drop_remainder and cfg.sort_window == 0
    ladder = B.make_ladder(graphs, cfg, 2)
    batches = list(B.eval_batch_iterator(graphs, cfg, 2, ladder=ladder))
    assert len(batches) == 2
    seen = {}
    for batch in batches:
        d, n_pad, e_pad, g_pad = batch.shape
        assert batch.graph.nodes.shape == (d, n_pad, 3) and batch.graph.senders.shape == (d, e_pad)
        assert batch.graph.senders.dtype == np.int32 and batch.y.dtype == np.float32
        assert np.array_equal(batch.edge_mask.sum(1), batch.n_real_edges)
        assert np.array_equal(batch.node_mask.sum(1), batch.n_real_nodes)
        for dev in range(d):
            real = batch.n_real_nodes[dev]
            pad = ~batch.edge_mask[dev]
            # padding edges live on padding nodes only, padding labels and features are zero
            assert np.all(batch.graph.senders[dev][pad] >= real)
            assert np.all(batch.graph.receivers[dev][pad] >= real)
            assert np.all(batch.graph.senders[dev][~pad] < real)
            assert np.all(batch.y[dev][pad] == 0) and np.all(batch.graph.nodes[dev][real:] == 0)
            assert batch.graph_mask[dev].sum() == (batch.graph_ids[dev] >= 0).sum()
        seen.update(B.split_edge_values(batch, batch.y))
    # evaluation order covers every graph exactly once, idle devices included
    assert sorted(seen) == list(range(5))
    for i, g in enumerate(graphs):
        assert np.array_equal(seen[i], g.y)
    last = batches[-1]
    assert last.n_graphs == 1 and sorted(last.n_real_edges.tolist()) == [0, 33]


@pytest.mark.parametrize("sort_window", [0, 2])
def test_order_reproducible_from_seed_epoch_and_resumable(sort_window):
    graphs = _graphs([(10, 30 + i) for i in range(20)])
    cfg = _cfg(graphs_per_step=4, sort_window=sort_window)
    ladder = B.make_ladder(graphs, cfg, 2)

    def ids(epoch, start=0, seed=0):
        return [np.sort(b.graph_ids[b.graph_ids >= 0]).tolist()
                for b in B.batch_iterator(graphs, cfg, 2, ladder=ladder, seed=seed, epoch=epoch,
                                          start_step=start)]
    e0 = ids(0)
    assert len(e0) == B.steps_per_epoch(20, cfg) == 5
    assert ids(0) == e0 and ids(1) != e0 and ids(0, seed=1) != e0
    assert ids(0, start=3) == e0[3:]
    assert sorted(sum(e0, [])) == list(range(20))


def test_ladder_dict_round_trip_and_padding_stats():
    graphs = _graphs([(10 + i, 40 + 5 * i) for i in range(12)])
    cfg = _cfg(graphs_per_step=4)
    ladder = B.make_ladder(graphs, cfg, 2)
    again = B.BucketLadder.from_dict(ladder.to_dict())
    assert again.buckets == ladder.buckets and again.oversize == ladder.oversize
    stats = B.padding_stats(B.batch_iterator(graphs, cfg, 2, ladder=ladder))
    d = stats.as_dict()
    assert d["n_batches"] == 3 and 1 <= d["n_shapes"] <= len(ladder.buckets)
    assert 0 < d["edge_utilisation"] <= 1 and 0 < d["node_utilisation"] <= 1
    total = sum(g.n_edges for g in graphs)
    assert stats.real_edges == total


def test_graphs_without_edge_features():
    graphs = _graphs([(6, 10), (8, 14), (5, 7)])
    for g in graphs:
        g.graph = g.graph._replace(edges=None)
    cfg = _cfg(graphs_per_step=3, shuffle=False)
    batch = next(B.batch_iterator(graphs, cfg, 2))
    assert batch.graph.edges is None and batch.graph.nodes.shape[0] == 2
    assert int(batch.edge_mask.sum()) == 31


@pytest.mark.parametrize("edge_features", [True, False])
def test_direct_padding_equals_jraph_padding(edge_features):
    graphs = _graphs([(13, 40), (7, 21), (30, 90), (5, 9), (11, 33)], seed=6)
    if not edge_features:
        for g in graphs:
            g.graph = g.graph._replace(edges=None)
    ladder = B.BucketLadder([B.Bucket(n_edge=192, n_node=64)])
    for ids, n_devices in (([0, 1, 2, 3], 2), ([4], 3), ([2, 0, 4], 1)):  # ([4], 3): idle devices
        fast = B.make_batch(graphs, np.array(ids), n_devices, ladder, 4)
        ref = B.make_batch(graphs, np.array(ids), n_devices, ladder, 4, use_jraph=True)
        for a, b in zip(fast.graph, ref.graph):
            assert (a is None and b is None) or (a.dtype == b.dtype and np.array_equal(a, b))
        assert np.array_equal(fast.y, ref.y) and fast.y.dtype == ref.y.dtype


def test_prefetch_keeps_order_and_reraises():
    assert list(B.prefetch(iter(range(7)), size=2, transform=lambda x: x * 10)) == list(range(0, 70, 10))

    def broken():
        yield 1
        raise InputError("bad graph file x.npz")
    got = B.prefetch(broken())
    assert next(got) == 1
    with pytest.raises(InputError, match="x.npz"):
        next(got)


@pytest.mark.parametrize("n_devices,per_step", [(1, 3), (2, 4)])
def test_warmup_batches_cover_every_shape_training_can_yield(n_devices, per_step):
    """Compiling the warm-up batches compiles every (array shape, dtype) a run's steps can have,
    and a warm-up batch holds no real edge."""
    rng = np.random.default_rng(5)
    graphs = _graphs([(int(n), int(2 * n)) for n in rng.integers(10, 60, size=24)], seed=1)
    cfg = _cfg(graphs_per_step=per_step, max_buckets=4)
    ladder = B.make_ladder(graphs, cfg, n_devices, seed=0)

    def signature(batch):
        leaves = [batch.graph.nodes, batch.graph.senders, batch.graph.receivers, batch.graph.n_node,
                  batch.graph.n_edge, batch.y, batch.edge_mask, batch.node_mask, batch.graph_mask]
        return tuple((np.shape(x), np.asarray(x).dtype.str) for x in leaves)

    warm = B.warmup_batches(graphs, cfg, n_devices, ladder)
    assert len(warm) == len(ladder.buckets)
    assert all(int(b.n_real_edges.sum()) == 0 and not b.edge_mask.any() for b in warm)
    compiled = {signature(b) for b in warm}
    seen = {signature(b) for epoch in range(6) for b in B.batch_iterator(graphs, cfg, n_devices, ladder=ladder,
                                                                         seed=0, epoch=epoch)}
    assert seen <= compiled
