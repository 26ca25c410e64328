"""Node and graph tasks: targets travel through padding and device stacking like edge labels; a
node task (noise hits) and a graph task (the sign graphs) train to the same numbers on 1, 2 and 4
devices; padding never changes a real node's or graph's output; the edge task is the step's own."""

import json

import jax
import ml_collections
import numpy as np
import pytest

from gnntrack import tasks, testing
from gnntrack.errors import ConfigError
from gnntrack.graphs import batching as B
from gnntrack.nn import build_model, default_model_config
from gnntrack.train import losses, optim, parallel, state as S, step as T

NOISE = [testing.random_hit_graph(np.random.default_rng(i), 10 + 3 * i, 30 + 7 * i, event_id=i)
         for i in range(8)]
SIGNS = testing.sign_graphs(16, seed=1)


def _task_and_model(name):
    task = tasks.make_task(tasks.default_task_config(name))
    model_cfg = default_model_config("graph_net")
    model_cfg.hidden, model_cfg.n_iters = 8, 1
    return task, build_model(tasks.model_config_for(task, model_cfg))


def _batching(per_step=4):
    bcfg = B.default_batching_config()
    bcfg.graphs_per_step = per_step
    bcfg.buckets = ((256, 512),)  # one shape for every device count
    return bcfg


def _train(name, n_devices, steps=3, per_step=4):
    """`steps` steps of the same global batches on `n_devices` devices (shard_map)."""
    task, model = _task_and_model(name)
    graphs = [task.attach_targets(g) for g in (NOISE if name == "node" else SIGNS)]
    pcfg = parallel.default_parallel_config()
    pcfg.n_devices = n_devices
    dp = parallel.DataParallel(pcfg)
    ocfg = optim.default_optimizer_config()
    ocfg.name, ocfg.lr = "adam", 1e-2
    tx, lr_fn = optim.make_optimizer(ocfg, per_step)
    batches, epoch = [], 0
    while len(batches) < steps:
        batches += list(B.batch_iterator(graphs, _batching(per_step), dp.n_devices, seed=3, epoch=epoch))
        epoch += 1
    batches = batches[:steps]
    state = S.init_train_state(model, tx, S.device_slice(batches[0].graph), seed=0)
    p_step = dp.train_step(T.make_train_step(model, tx, None, dp.axis_name, lr_fn=lr_fn, task=task))
    placed, history = dp.put_state(state), []
    for batch in batches:
        placed, metrics = p_step(placed, batch)
        history.append({k: float(v) for k, v in metrics.items()})
    return jax.device_get(dp.get_state(placed)).params, history


@pytest.mark.parametrize("name", ["node", "graph"])
def test_a_task_trains_to_the_same_numbers_on_1_2_and_4_devices(name):
    # Different device counts are different programs (other summation orders): equal within
    # float32 rounding, not bitwise.
    params_1, history_1 = _train(name, 1)
    for n in (2, 4):
        params_n, history_n = _train(name, n)
        for a, b in zip(history_1, history_n):
            assert a["n_edges"] == b["n_edges"]  # the task's real items (nodes / graphs): exact
            np.testing.assert_allclose(b["loss"], a["loss"], rtol=1e-5)
        jax.tree_util.tree_map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-6),
                               params_1, params_n)
    if name == "graph":
        assert all(h["n_edges"] == 4 for h in history_1)  # real graphs per step, not padding slots


def test_targets_travel_through_padding_and_dealing():
    task = tasks.make_task(tasks.default_task_config("node"))
    graphs = [task.attach_targets(g) for g in NOISE]
    batch = B.make_batch(graphs, np.arange(5), 2, B.make_ladder(graphs, _batching(), 2), 4)
    for d in range(2):
        ids = batch.graph_ids[d][batch.graph_ids[d] >= 0]
        real = np.concatenate([graphs[i].node_y for i in ids])
        np.testing.assert_array_equal(batch.node_y[d, :len(real)], real)
        assert not batch.node_y[d, len(real):].any() and batch.node_mask[d].sum() == len(real)
    signs = [tasks.make_task(tasks.default_task_config("graph")).attach_targets(g) for g in SIGNS]
    batch = B.make_batch(signs, np.arange(5), 2, B.make_ladder(signs, _batching(), 2), 4)
    for d in range(2):
        for slot, i in enumerate(batch.graph_ids[d]):
            expected = signs[i].graph_y if i >= 0 else np.zeros(1)
            np.testing.assert_array_equal(batch.graph_y[d, slot], expected)
    assert B.make_batch(NOISE, np.arange(2), 1, B.make_ladder(NOISE, _batching(), 1), 3).node_y is None


@pytest.mark.parametrize("name", ["node", "graph"])
def test_padding_never_changes_a_real_output(name):
    task, model = _task_and_model(name)
    graphs = [task.attach_targets(g) for g in (NOISE if name == "node" else SIGNS)][:3]
    ids = np.arange(3)
    small = B.make_batch(graphs, ids, 1, B.BucketLadder.from_dict({"buckets": [[128, 256]]}), 4)
    large = B.make_batch(graphs, ids, 1, B.BucketLadder.from_dict({"buckets": [[512, 1024]]}), 9)
    params = model.init(jax.random.key(0), S.device_slice(small.graph))["params"]

    def real(batch):
        out = np.asarray(model.apply({"params": params}, S.device_slice(batch.graph)))
        mask = (batch.node_mask if name == "node" else batch.graph_mask)[0]
        return out[mask]

    # different padded shapes are different programs: equal within float32 rounding
    np.testing.assert_allclose(real(small), real(large), rtol=1e-5, atol=1e-6)


def test_the_graph_task_learns_the_sign_graphs():
    _, history = _train("graph", 1, steps=24)
    first, last = np.mean([h["loss"] for h in history[:4]]), np.mean([h["loss"] for h in history[-4:]])
    assert last < 0.5 * first  # an epoch (4 steps) each: the same graphs, much lower loss


def test_the_edge_task_is_the_steps_own_edge_loss():
    # Same model, shapes and ops on one device: the two steps are one program, so bitwise equal.
    lcfg = losses.resolve_loss_config(losses.default_loss_config(), [g.y for g in NOISE])
    edge = tasks.EdgeTask(w_true=lcfg.weight_true, w_fake=lcfg.weight_fake)
    model = build_model(ml_collections.ConfigDict(dict(name="interaction_network", hidden=8)))
    ocfg = optim.default_optimizer_config()
    tx, _ = optim.make_optimizer(ocfg, 4)
    batch = next(B.batch_iterator(NOISE, _batching(), 1, seed=0, epoch=0))
    state = S.init_train_state(model, tx, S.device_slice(batch.graph), seed=0)
    pcfg = parallel.default_parallel_config()
    pcfg.n_devices = 1
    dp = parallel.DataParallel(pcfg)
    outs = [dp.train_step(T.make_train_step(model, tx, lcfg, dp.axis_name, task=t), donate_state=False)(
        dp.put_state(state), batch)[1]["loss"] for t in (None, edge)]
    assert float(outs[0]) == float(outs[1])


def test_task_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="unknown task 'jets'.*available: edge, node, graph"):
        tasks.default_task_config("jets")
    cfg = tasks.default_task_config("node")
    cfg.n_classes = 1
    with pytest.raises(ConfigError, match="task.n_classes"):
        tasks.make_task(cfg)
    cfg = tasks.default_task_config("graph")
    cfg.target = "noise"
    with pytest.raises(ConfigError, match="unknown task.target 'noise'"):
        tasks.make_task(cfg)


# --- the whole run: train_and_evaluate with a node task and a graph task -------------------------

RUN = ["train.steps=4", "train.log_every=1", "train.eval_every=2", "train.checkpoint_every=0",
       "train.best_metric=val_f1", "batching.graphs_per_step=4", "batching.max_buckets=1",
       "model.name=graph_net", "model.hidden=8", "model.n_iters=1", "optimizer.lr=1e-2"]
TASK_RUNS = {
    # pt_min 0 keeps the noise hits (a pT cut is a truth cut: it leaves only hits of particles)
    "node": ["task.name=node", "graph.pt_min=0.0", "data.n_train=4", "data.n_val=1", "data.n_test=1"],
    "graph": ["task.name=graph", "data.source=sign_graphs", "data.n_train=16", "data.n_val=4", "data.n_test=4"],
}


@pytest.fixture(scope="module")
def task_runs(tmp_path_factory):
    """{(task, devices): (result, per-step losses, run directory)} of tiny runs on 1, 2 and 4
    devices (a node task on simulated tracking graphs, a graph task on the sign graphs)."""
    from gnntrack.config import load_config
    from gnntrack.train.loop import train_and_evaluate
    from tests.test_config import SMOKE

    root = tmp_path_factory.mktemp("tasks")
    out = {}
    for name, extra in TASK_RUNS.items():
        for n in (1, 2, 4):
            config = load_config(SMOKE, [*RUN, *extra, f"parallel.n_devices={n}",
                                         f"data.cache_dir={root / 'cache'}"])
            run = root / f"{name}_{n}"
            result = train_and_evaluate(config, run)
            records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
            out[name, n] = result, [r["loss"] for r in records if "loss" in r], run
    return out


@pytest.mark.parametrize("name", ["node", "graph"])
def test_a_task_run_gives_the_same_numbers_on_1_2_and_4_devices(task_runs, name):
    # different device counts are different programs: equal within float32 rounding
    result_1, losses_1, _ = task_runs[name, 1]
    assert len(losses_1) == 4 and result_1["steps"] == 4
    assert 0.0 <= result_1["test_accuracy"] <= 1.0 and np.isfinite(result_1["test_loss"])
    assert np.isfinite(result_1["val_auc"])  # both classes present (noise and track hits)
    for n in (2, 4):
        result_n, losses_n, _ = task_runs[name, n]
        np.testing.assert_allclose(losses_n, losses_1, rtol=1e-5)
        for key in ("val_loss", "test_loss", "val_auc", "test_accuracy"):
            np.testing.assert_allclose(result_n[key], result_1[key], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", ["node", "graph"])
def test_a_task_run_writes_its_predictions(task_runs, name):
    from gnntrack.train.loop import load_scores

    result, _, run = task_runs[name, 1]
    preds = load_scores(run / "test_predictions.npz")
    n_items = result["n_test_items"]
    assert preds["scores"].shape == (n_items,) and preds["targets"].shape == (n_items, 1)
    assert preds["graph_offsets"][-1] == n_items and ((preds["scores"] >= 0) & (preds["scores"] <= 1)).all()
    if name == "graph":
        assert n_items == 4


def test_a_multi_head_loss_is_the_sum_over_real_items_of_cross_entropy_and_squared_error():
    cfg = tasks.default_task_config("node")
    cfg.target, cfg.n_classes, cfg.n_regression = "given", 3, 2
    task = tasks.make_task(cfg)
    assert task.output_width == 5
    rng = np.random.default_rng(0)
    outputs = rng.normal(size=(6, 5)).astype(np.float32)
    y = np.concatenate([rng.integers(0, 3, (6, 1)), rng.normal(size=(6, 2))], axis=1).astype(np.float32)
    mask = np.array([True, True, True, True, False, False])  # two padding nodes
    batch = B.DeviceBatch(graph=None, y=np.zeros(1), edge_mask=np.zeros(1, bool), node_mask=mask,
                          graph_mask=np.ones(1, bool), node_y=y)
    logits = outputs[:, :3] - outputs[:, :3].max(1, keepdims=True)
    ce = np.log(np.exp(logits).sum(1)) - logits[np.arange(6), y[:, 0].astype(int)]
    expected = np.sum((ce + np.sum((outputs[:, 3:] - y[:, 1:]) ** 2, 1))[mask])
    np.testing.assert_allclose(float(task.loss_sum(outputs, batch)), expected, rtol=1e-5)
    assert float(task.count(batch)) == 4.0
    preds = task.predict(outputs, batch)
    assert preds["scores"].shape == (6, 3) and not np.asarray(preds["values"])[~mask].any()


def test_a_task_runs_summary_counts_its_items(task_runs):
    from rich.console import Console

    from gnntrack.train.evaluation import print_summary

    result, _, _ = task_runs["node", 1]
    console = Console(record=True, width=120)
    print_summary(result, console=console)
    text = console.export_text()
    assert "items" in text and f"{result['n_test_items']:,}" in text  # used to read 0 edges
