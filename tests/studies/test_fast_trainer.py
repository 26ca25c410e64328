"""The studies' steps-to-target runs on any task: a graph task (the sign graphs) trains through
the same loop and prediction path as an edge task, and an unknown target metric is named."""

import pytest

from gnntrack.config import load_config
from gnntrack.errors import ConfigError
from gnntrack.studies.fast_trainer import clear_caches, train_to_target
from gnntrack.train.hooks import Target
from tests.test_config import SMOKE

GRAPH_TASK = ["task.name=graph", "data.source=sign_graphs", "data.n_train=16", "data.n_val=8", "data.n_test=0",
              "model.name=graph_net", "model.hidden=8", "model.n_iters=1", "optimizer.name=adam",
              "optimizer.lr=1e-2", "batching.graphs_per_step=4", "batching.max_buckets=1", "train.steps=12",
              "train.log_every=2"]


def test_a_graph_task_trains_to_a_target_with_the_tasks_own_metrics(tmp_path):
    clear_caches()
    config = load_config(SMOKE, GRAPH_TASK)
    result = train_to_target(config, tmp_path / "run", target=Target("val_loss", 1e9, "min"), eval_rel=0.5)
    # any finite loss is <= 1e9: reached at the first evaluation, through the graph task's summary
    assert result["reached"] and result["steps_to_target"] == 1 and result["steps"] == 1
    assert {"val_accuracy", "val_auc", "val_loss"} <= set(result)
    result = train_to_target(config, tmp_path / "full", target=Target("val_accuracy", 2.0, "max"), eval_rel=0.5)
    assert not result["reached"] and result["steps"] == 12 and 0.0 <= result["best_val_accuracy"] <= 1.0


def test_a_target_metric_the_task_does_not_report_is_named(tmp_path):
    clear_caches()
    config = load_config(SMOKE, GRAPH_TASK)
    with pytest.raises(ConfigError, match=r"'study.target_metric'='val_mse'.*val_accuracy"):
        train_to_target(config, tmp_path / "run", target=Target("val_mse", 0.1, "min"))
