"""A teacher's logits for knowledge distillation: computed once from its run directory, cached.

    logits = cached_teacher_logits("runs/jets_particlenet_lite", jets, paths, limit, cache_root)

The teacher is the run's config.json (its model and its own input settings, data.jets.
n_constituents / features, which may be richer than the student's) and its best checkpoint by
the run's validation metric (the newest when no best is kept). Its logit for every jet is
written once into the student's data cache (`<cache>/jets-teacher-<key>/logits.npy`), keyed by
the teacher's directory and checkpoint step and the jet files (paths, sizes, modification
times), so the student's runs at other fractions, temperatures or seeds reuse it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import jax
import jraph
import numpy as np

from gnntrack.config import CONFIG_FILE_NAME, load_config
from gnntrack.errors import InputError
from gnntrack.jets.graphs import jet_inputs, jets_source_config
from gnntrack.jets.types import JetArrays
from gnntrack.nn.registry import build_model
from gnntrack.train.checkpoint import CHECKPOINT_DIR_NAME, Checkpointer
from gnntrack.train.data import _build_cached, config_key

CHUNK = 512  # jets per inference call (one compiled shape)


def load_teacher(teacher_dir: str | os.PathLike):
    """(model, params, teacher's data.jets settings, checkpoint step) of a finished jets run.

    InputError naming the directory when it is not a jets run or holds no checkpoint."""
    workdir = Path(os.path.expanduser(str(teacher_dir))).resolve()
    if not (workdir / CONFIG_FILE_NAME).is_file():
        raise InputError(f"config key 'data.jets.teacher_dir': {workdir} is not a run directory "
                         f"({CONFIG_FILE_NAME} not found); train the teacher there first")
    config = load_config(workdir / CONFIG_FILE_NAME)
    if config.data.get("source") != "jets":
        raise InputError(f"config key 'data.jets.teacher_dir': {workdir} is a run on data.source="
                         f"{config.data.get('source')!r}; the teacher must be a jets run")
    keys = jets_source_config()
    keys.update(config.data.get("jets", {}))
    train = config.get("train", {})
    with Checkpointer(workdir / CHECKPOINT_DIR_NAME, best_metric=train.get("best_metric", None) or None,
                      best_mode=train.get("best_mode", "max"), read_only=True) as ckpt:
        if not ckpt.all_steps():
            raise InputError(f"config key 'data.jets.teacher_dir': {workdir} has no checkpoint; let the "
                             f"teacher's training save one (train.checkpoint_every)")
        restored = ckpt.restore_newest(prefer=ckpt.best_step())
    state = restored.state
    params = state["params"] if isinstance(state, dict) else state.params
    return build_model(config.model), params, keys, restored.step


def batched_graph(features: np.ndarray, mask: np.ndarray, n_graph: int) -> jraph.GraphsTuple:
    """One jraph batch of the jets' real constituents (features [J, P, F], mask [J, P]), padded
    to n_graph graphs (> J) and n_graph * P + 1 nodes, so every chunk has the same shape."""
    n_node = np.zeros(n_graph, np.int32)
    n_node[:len(mask)] = mask.sum(1)
    total = n_graph * mask.shape[1] + 1
    nodes = np.zeros((total, features.shape[-1]), np.float32)
    nodes[:int(n_node.sum())] = features[mask]
    n_node[len(mask)] = total - int(n_node.sum())  # jraph's padding graph
    return jraph.GraphsTuple(nodes=nodes, edges=np.zeros((0, 1), np.float32), senders=np.zeros(0, np.int32),
                             receivers=np.zeros(0, np.int32), n_node=n_node,
                             n_edge=np.zeros(n_graph, np.int32), globals=None)


def teacher_logits(model, params, keys, jets: JetArrays, chunk: int = CHUNK) -> np.ndarray:
    """float32 [J]: the teacher's logit for every jet, from its own input settings `keys`."""
    features, mask = jet_inputs(jets, int(keys.n_constituents), keys.features)
    apply = jax.jit(lambda p, g: model.apply({"params": p}, g, train=False)[:, 0])
    out = np.zeros(len(jets), np.float32)
    for start in range(0, len(jets), chunk):
        part = slice(start, min(start + chunk, len(jets)))
        graph = batched_graph(features[part], mask[part], chunk + 1)
        out[part] = np.asarray(apply(params, graph))[:part.stop - part.start]
    return out


def files_signature(paths: list[str]) -> list[tuple[str, int, int]]:
    """(path, size, mtime in ns) per file: a changed file gets other teacher logits."""
    return [(p, os.stat(p).st_size, os.stat(p).st_mtime_ns) for p in paths]


def cached_teacher_logits(teacher_dir: str | os.PathLike, jets: JetArrays, paths: list[str], limit: int,
                          root: Path) -> np.ndarray:
    """float32 [J]: the teacher's logits for `jets` (read from `paths`, first `limit` per file),
    computed on first use and cached under `root` (see the module docstring)."""
    model, params, keys, step = load_teacher(teacher_dir)
    where = str(Path(os.path.expanduser(str(teacher_dir))).resolve())
    key = config_key("jets-teacher", where, step, files_signature(paths), limit, len(jets))

    def build(tmp: Path) -> None:
        np.save(tmp / "logits.npy", teacher_logits(model, params, keys, jets))
        (tmp / "teacher.json").write_text(json.dumps({"teacher_dir": where, "step": step, "paths": paths,
                                                      "limit": limit, "n_jets": len(jets)}, indent=1))

    return np.load(_build_cached(root / f"jets-teacher-{key}", build) / "logits.npy")
