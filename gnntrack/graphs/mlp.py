"""Small tanh MLPs of the learned graph stages (metric-learning embedding, edge filter), and
their files.

    params = init_mlp(np.random.default_rng(0), (5, 64, 64, 8))
    y = apply_mlp(params, x)                  # numpy on the host: graph building needs no JAX
    y = apply_mlp(params, x, xp=jax.numpy)    # the same function inside a jitted loss
    save_mlp("embedding.npz", params, {"kind": "embedding", ...})
    params, meta = load_mlp("embedding.npz", kind="embedding")

params: a list of (W float32 [F_in, F_out], b float32 [F_out]) per layer; hidden layers tanh,
the last one linear. A file is one .npz: W0, b0, W1, ... and `meta` (a JSON string: the kind of
stage, its input names and the graph config it was trained with), written atomically.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import numpy as np

from gnntrack.errors import InputError
from gnntrack.io.atomic import atomic_path


def init_mlp(rng: np.random.Generator, sizes) -> list[tuple[np.ndarray, np.ndarray]]:
    """Layers sizes[0] -> sizes[1] -> ... -> sizes[-1]; lecun-normal weights, zero biases."""
    return [((rng.standard_normal((a, b)) / np.sqrt(a)).astype(np.float32), np.zeros(b, np.float32))
            for a, b in zip(sizes[:-1], sizes[1:])]


def apply_mlp(params, x, xp=np):
    """[..., F_in] -> [..., F_out]. `xp` is numpy (host, float32) or jax.numpy (training)."""
    for k, (w, b) in enumerate(params):
        x = x @ w + b
        if k + 1 < len(params):
            x = xp.tanh(x)
    return x


def save_mlp(path: str | os.PathLike, params, meta: dict) -> Path:
    """Writes params and `meta` (JSON-able) to `path` (.npz) atomically; returns the path."""
    path = Path(path)
    arrays = {}
    for k, (w, b) in enumerate(params):
        arrays[f"W{k}"] = np.asarray(w, np.float32)
        arrays[f"b{k}"] = np.asarray(b, np.float32)
    arrays["meta"] = np.str_(json.dumps(meta))
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:  # a file object: numpy must not append its own suffix
            np.savez(f, **arrays)
    return path


def load_mlp(path: str | os.PathLike, kind: str) -> tuple[list, dict]:
    """(params, meta) of a file written by `save_mlp` for a stage of this `kind`.

    Raises InputError naming the file when it is missing, unreadable or of another kind.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{kind} file not found: {path} (train one with gnntrack.graphs.fit, "
                         "see scripts/graph_construction_table.py)")
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            n = sum(1 for name in data.files if name.startswith("W"))
            params = [(data[f"W{k}"], data[f"b{k}"]) for k in range(n)]
    except Exception as exc:  # zipfile / key / JSON errors: name the file
        raise InputError(f"cannot read {kind} file {path}: {exc!r}") from exc
    if meta.get("kind") != kind:
        raise InputError(f"{path} holds a {meta.get('kind')!r} stage, not a {kind!r} one")
    return params, meta


def load_mlp_cached(path: str | os.PathLike, kind: str) -> tuple[list, dict]:
    """`load_mlp`, read once per process while the file is unchanged (graph building asks for
    the same stage once per event)."""
    path = Path(path)
    if not path.is_file():
        return load_mlp(path, kind)  # raises, naming the file
    st = path.stat()
    return _load_cached(str(path), kind, st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=8)
def _load_cached(path: str, kind: str, mtime_ns: int, size: int):
    return load_mlp(path, kind)
