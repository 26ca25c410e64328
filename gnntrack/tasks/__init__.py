"""Tasks: what a graph's targets are, the loss, and what is predicted, by name (`task.name`).

    task = make_task(config.task)                 # edge | node | graph
    graphs = [task.attach_targets(g) for g in graphs]   # per-node / per-graph targets on HitGraphs
    train_step = make_train_step(model, tx, loss_cfg, task=task)

A task is an object with
  level: "edge" | "node" | "graph" (which items its targets and outputs are per);
  output_width: the model's output width per item (the head picks it from the task config);
  attach_targets(HitGraph) -> HitGraph: the graph with its targets (`node_y` / `graph_y`);
  count(batch) -> float32 scalar: real items of one device's DeviceBatch;
  loss_sum(outputs, batch) -> float32 scalar: the loss summed over those real items;
  predict(outputs, batch) -> dict of per-item arrays (zero on padding).
Losses are sums with a count, so the train step's psum over devices normalises exactly as for
edges, and padding (masked) never enters a loss, a count or a real item's output.
"""

from __future__ import annotations

from typing import Callable

import ml_collections

from gnntrack.errors import ConfigError
from gnntrack.keys import check_known_keys
from gnntrack.tasks.edge import EdgeTask, edge_task_config
from gnntrack.tasks.jets import JetTask, jet_task_config
from gnntrack.tasks.labels import LabelTask, graph_task_config, node_task_config
from gnntrack.tasks.pflow import PflowTask, pflow_task_config

_TASKS: dict[str, tuple[Callable, Callable[[], ml_collections.ConfigDict]]] = {
    "edge": (EdgeTask.from_config, edge_task_config),
    "node": (LabelTask.from_config, node_task_config),
    "graph": (LabelTask.from_config, graph_task_config),
    "pflow": (PflowTask.from_config, pflow_task_config),
    "jet": (JetTask.from_config, jet_task_config),
}


def available_tasks() -> list[str]:
    return list(_TASKS)


def _lookup(name):
    try:
        return _TASKS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown task {name!r} (config key 'task.name'); available: "
                          f"{', '.join(available_tasks())}") from None


def default_task_config(name: str = "edge") -> ml_collections.ConfigDict:
    """A fresh copy of task `name`'s default config group."""
    return _lookup(name)[1]()


def make_task(task_config: ml_collections.ConfigDict):
    """The task described by a `task` config group (checked against its defaults)."""
    cfg = ml_collections.ConfigDict(task_config.to_dict())
    build, defaults = _lookup(cfg.get("name", "edge"))
    reference = defaults()
    check_known_keys(cfg, reference, where="task")
    return build(ml_collections.ConfigDict({**reference.to_dict(), **cfg.to_dict()}))


def model_config_for(task, model_config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """A copy of `model_config` with the task's head: `level` and `outputs` set where the model
    has those keys (models for one fixed level, like the edge classifiers, have neither)."""
    out = ml_collections.ConfigDict(model_config.to_dict())
    if "level" in out:
        out.level = task.level
    if "outputs" in out:
        out.outputs = task.output_width
    return out


__all__ = ["EdgeTask", "LabelTask", "available_tasks", "default_task_config", "make_task",
           "model_config_for"]
