"""Per-device train/eval steps: global normalisation, padding invariance, jit vs eager, metrics,
gradient accumulation."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gnntrack.graphs import batching as B
from gnntrack.train import losses, optim, parallel, state as S, step as T


class TinyEdgeModel(nn.Module):
    """One round of message passing + an edge MLP; padding edges only touch padding nodes."""

    @nn.compact
    def __call__(self, graph, train=False):
        x = nn.tanh(nn.Dense(8)(graph.nodes))
        msg = jax.ops.segment_sum(x[graph.senders], graph.receivers, num_segments=x.shape[0])
        x = nn.tanh(nn.Dense(8)(jnp.concatenate([x, msg], -1)))
        h = jnp.concatenate([x[graph.senders], x[graph.receivers], graph.edges], -1)
        return nn.Dense(1)(nn.tanh(nn.Dense(8)(h)))[:, 0]


def _graphs(n=8, seed=0, equal=False):
    rng = np.random.default_rng(seed)
    sizes = [(20, 60)] * n if equal else [(int(rng.integers(10, 30)), int(rng.integers(20, 90))) for _ in range(n)]
    return [B.synthetic_hit_graph(rng, a, b, event_id=i) for i, (a, b) in enumerate(sizes)]


def _batch_cfg(per_step, buckets=()):
    cfg = B.default_batching_config()
    cfg.graphs_per_step = per_step
    cfg.shuffle = False
    cfg.buckets = buckets
    return cfg


def _loss_cfg(w_true=2.0, w_fake=0.5):
    cfg = losses.default_loss_config()
    cfg.weight_true, cfg.weight_fake = w_true, w_fake
    return cfg


_CACHE = {}  # compiled step functions shared by tests (each compilation costs seconds on CI)


def _setup(graphs, per_step, n_devices=1, opt=None, buckets=(), mode="shard_map"):
    ocfg = opt or optim.default_optimizer_config()
    key = (per_step, n_devices, mode, ocfg.to_json())
    if key not in _CACHE:
        model = TinyEdgeModel()
        tx, lr_fn = optim.make_optimizer(ocfg, per_step)
        pcfg = parallel.default_parallel_config()
        pcfg.n_devices, pcfg.mode = n_devices, mode
        dp = parallel.DataParallel(pcfg)
        fn = T.make_train_step(model, tx, _loss_cfg(), dp.axis_name, lr_fn=lr_fn)
        _CACHE[key] = (model, dp, fn, lr_fn, tx)
    model, dp, fn, lr_fn, tx = _CACHE[key]
    batches = list(B.batch_iterator(graphs, _batch_cfg(per_step, buckets), n_devices))
    state = S.init_train_state(model, tx, S.device_slice(batches[0].graph), seed=0)
    return model, dp, fn, state, batches, lr_fn


def _run(dp, fn, state, batches, donate=True):
    key = (id(fn), donate)
    if key not in _CACHE:
        _CACHE[key] = dp.train_step(fn, donate_state=donate)
    p_step = _CACHE[key]
    state = dp.put_state(state)
    history = []
    for batch in batches:
        state, metrics = p_step(state, batch)
        history.append({k: float(v) for k, v in metrics.items()})
    return dp.get_state(state), history


def _unpadded_logits(model, params, graphs):
    """Logits of all graphs from one unpadded concatenation (edges never cross graphs)."""
    import jraph
    graph = jraph.batch_np([g.graph for g in graphs])
    logits = np.asarray(jax.jit(model.apply)({"params": params}, jax.tree_util.tree_map(jnp.asarray, graph)))
    return np.split(logits, np.cumsum([g.n_edges for g in graphs])[:-1])


def _reference_loss(model, params, graphs, w_true=2.0, w_fake=0.5):
    """Global weighted BCE over all real edges (numpy, float64)."""
    logits = np.concatenate(_unpadded_logits(model, params, graphs)).astype(np.float64)
    y = np.concatenate([g.y for g in graphs])
    p = 1 / (1 + np.exp(-logits))
    w = np.where(y > 0.5, w_true, w_fake)
    return float(np.mean(-w * (y * np.log(p) + (1 - y) * np.log(1 - p))))


def test_loss_is_global_mean_over_real_edges_and_metrics():
    graphs = _graphs(8)
    model, dp, fn, state, batches, lr_fn = _setup(graphs, per_step=8, n_devices=2)
    ref = _reference_loss(model, state.params, graphs)
    _, hist = _run(dp, fn, state, batches[:1])
    m = hist[0]
    assert m["loss"] == pytest.approx(ref, rel=1e-5)
    assert m["n_edges"] == sum(g.n_edges for g in graphs) == m["B_big"]
    assert m["B_small"] == pytest.approx(m["B_big"] / 2)
    assert m["n_graphs"] == 8
    assert m["lr"] == pytest.approx(float(lr_fn(0)))
    assert m["grad_norm"] ** 2 == pytest.approx(m["grad_norm_sq_global"], rel=1e-5)
    # each device's own gradient is noisier than the mean: |G_small|^2 >= |G_big|^2 on average
    assert m["grad_norm_sq_local"] > 0 and m["grad_norm_sq_global"] > 0


def test_padding_invariance_of_loss_grads_and_update():
    graphs = _graphs(4, seed=1)
    _, dp, fn, state, tight, _ = _setup(graphs, per_step=4, n_devices=1)
    _, _, _, _, loose, _ = _setup(graphs, per_step=4, n_devices=1, buckets=((1000, 4096),))
    assert loose[0].shape[2] == 4096 and tight[0].shape[2] < 4096
    s1, h1 = _run(dp, fn, state, tight)
    s2, h2 = _run(dp, fn, state, loose)
    # one device: its own gradient is the global one
    assert h1[0]["grad_norm_sq_local"] == pytest.approx(h1[0]["grad_norm_sq_global"], rel=1e-5)
    assert h1[0]["B_small"] == h1[0]["B_big"]
    for key in ("loss", "grad_norm_sq_global", "grad_norm_sq_local", "n_edges"):
        assert h1[0][key] == pytest.approx(h2[0][key], rel=1e-5), key
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
                           s1.params, s2.params)


def test_jit_and_eager_agree():
    graphs = _graphs(4, seed=2)
    model, dp, fn, state, batches, _ = _setup(graphs, per_step=4, n_devices=1)
    _, hist = _run(dp, fn, state, batches[:1])
    jitted_eval = dp.eval_step(T.make_eval_step(model))(dp.put_state(state), batches[0])
    one = S.device_slice(batches[0].device_batch())
    with jax.disable_jit():
        eager_scores = T.make_eval_step(model)(state, one)["scores"]
        logits = model.apply({"params": state.params}, one.graph)
        total, count = losses.masked_loss_sum(logits, one.y, one.edge_mask, 2.0, 0.5)
    np.testing.assert_allclose(jitted_eval["scores"][0], eager_scores, rtol=1e-5, atol=1e-6)
    assert hist[0]["loss"] == pytest.approx(float(total / count), rel=1e-5)


def test_vmap_executor_matches_shard_map():
    """The per-device step also runs under jax.vmap(axis_name=...) (D simulated devices on one)."""
    graphs = _graphs(4, seed=5)
    _, dp, fn, state, batches, _ = _setup(graphs, per_step=4, n_devices=2)
    s_sm, h_sm = _run(dp, fn, state, batches)
    vstep = jax.jit(jax.vmap(fn, in_axes=(None, 0), out_axes=(None, None), axis_name=dp.axis_name))
    s_vm, m = vstep(state, batches[0].device_batch())
    assert float(m["loss"]) == pytest.approx(h_sm[0]["loss"], rel=1e-6)
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
                           s_vm.params, s_sm.params)


def test_accumulation_equals_bigger_batch_for_sgd():
    graphs = _graphs(8, seed=3, equal=True)  # equal edge counts: mean of micro-batch means = big mean
    sgd = optim.default_optimizer_config()
    sgd.name, sgd.lr, sgd.momentum = "sgd", 0.5, 0.9
    _, dp, fn, state, big, _ = _setup(graphs, per_step=4, n_devices=2, opt=sgd)
    s_big, _ = _run(dp, fn, state, big)             # 2 updates of 4 graphs
    acc = optim.default_optimizer_config()
    acc.name, acc.lr, acc.momentum, acc.accumulation_steps = "sgd", 0.5, 0.9, 2
    _, dp, fn, state, small, _ = _setup(graphs, per_step=2, n_devices=2, opt=acc)
    s_acc, _ = _run(dp, fn, state, small)           # 4 micro-steps of 2 graphs
    assert int(s_acc.step) == 4 and int(s_big.step) == 2
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6),
                           s_acc.params, s_big.params)


def test_eval_step_scores_match_unpadded_model():
    graphs = _graphs(5, seed=4)
    model, dp, fn, state, _, _ = _setup(graphs, per_step=4, n_devices=2)
    cfg = _batch_cfg(4)
    p_eval = dp.eval_step(T.make_eval_step(model, _loss_cfg()))
    placed = dp.put_state(state)
    got, loss_sum, n_edges = {}, 0.0, 0
    for batch in B.eval_batch_iterator(graphs, cfg, dp.n_devices):
        out = jax.device_get(p_eval(placed, batch))
        assert out["scores"].shape == batch.y.shape
        assert np.all(out["scores"][~batch.edge_mask] == 0)
        got.update(B.split_edge_values(batch, out["scores"]))
        loss_sum += float(out["loss_sum"].sum())
        n_edges += int(batch.n_real_edges.sum())
    assert sorted(got) == list(range(5))
    for i, logits in enumerate(_unpadded_logits(model, state.params, graphs)):
        np.testing.assert_allclose(got[i], jax.nn.sigmoid(logits), rtol=1e-5, atol=1e-6)
    assert loss_sum / n_edges == pytest.approx(_reference_loss(model, state.params, graphs), rel=1e-5)


def test_unresolved_auto_loss_is_rejected():
    cfg = losses.default_loss_config()
    cfg.weighting = "auto"
    tx, _ = optim.make_optimizer(optim.default_optimizer_config(), 1)
    with pytest.raises(Exception, match="resolve_loss_config"):
        T.make_train_step(TinyEdgeModel(), tx, cfg)
