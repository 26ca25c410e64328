"""Particle-flow events on disk: chunks of events as .npz files, plus pflow.json.

    out/pflow.json            settings, seed, column names, chunk list (written last)
    out/chunk_00000.npz       events 0 ... chunk_size-1, arrays concatenated over events

A chunk holds, with `offsets` / `gen_offsets` (int64 [n_events + 1]) cutting the concatenations:
  elements float32 [sum N, len(ELEMENT_FEATURES)], targets and baseline float32
  [sum N, len(TARGET_COLUMNS)], particle int64 [sum N] (the generator particle, an index into the
  event's gen rows, that made the track or left the most energy in the cluster; -1 for a cluster
  of noise only), gen float32 [sum M, len(TARGET_COLUMNS)] (generator particles with
  |eta| < GEN_ETA_MAX, neutrinos as class 'none'), gen_pid int32 and gen_collision int32
  [sum M] (0 hard scatter, k >= 1 pileup), event_id int64 [n_events].
The zip entries carry a fixed timestamp, so the same events give the same bytes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from gnntrack.errors import InputError
from gnntrack.io.atomic import atomic_path
from gnntrack.pflow.types import ELEMENT_FEATURES, TARGET_COLUMNS

META_NAME = "pflow.json"
CHUNK_PATTERN = "chunk_{:05d}.npz"
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclasses.dataclass
class PflowEvent:
    """One bunch crossing's elements, targets, baseline predictions and generator particles
    (shapes as in the module docstring, for one event)."""

    event_id: int
    elements: np.ndarray
    targets: np.ndarray
    baseline: np.ndarray
    particle: np.ndarray
    gen: np.ndarray
    gen_pid: np.ndarray
    gen_collision: np.ndarray


PER_ELEMENT = ("elements", "targets", "baseline", "particle")
PER_GEN = ("gen", "gen_pid", "gen_collision")


def chunk_arrays(events: list[PflowEvent]) -> dict[str, np.ndarray]:
    """The arrays of one chunk file."""
    def offsets(n):
        return np.concatenate([[0], np.cumsum(n)]).astype(np.int64)

    arrays = {name: np.concatenate([getattr(e, name) for e in events]) for name in PER_ELEMENT + PER_GEN}
    arrays["offsets"] = offsets([len(e.elements) for e in events])
    arrays["gen_offsets"] = offsets([len(e.gen) for e in events])
    arrays["event_id"] = np.array([e.event_id for e in events], np.int64)
    return arrays


def write_npz_atomic(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """Writes `arrays` as an uncompressed .npz (np.load reads it) atomically, with fixed zip
    timestamps (np.savez stamps the time of writing, so equal arrays would differ in bytes)."""
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
        for name, array in arrays.items():
            with zf.open(zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_EPOCH), "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.ascontiguousarray(array), allow_pickle=False)


def split_chunk(arrays: dict[str, np.ndarray]) -> list[PflowEvent]:
    """The events of one chunk's arrays."""
    o, g = arrays["offsets"], arrays["gen_offsets"]
    return [PflowEvent(event_id=int(arrays["event_id"][i]),
                       **{n: arrays[n][o[i]:o[i + 1]] for n in PER_ELEMENT},
                       **{n: arrays[n][g[i]:g[i + 1]] for n in PER_GEN})
            for i in range(len(arrays["event_id"]))]


def read_meta(directory: str | os.PathLike) -> dict:
    """pflow.json of an event directory; InputError naming the directory when it is not one."""
    path = Path(directory) / META_NAME
    if not path.is_file():
        raise InputError(f"{directory}: no {META_NAME}; write particle-flow events there with "
                         f"'gnntrack pflow simulate --out {directory}'")
    meta = json.loads(path.read_text(encoding="utf-8"))
    if tuple(meta["element_features"]) != ELEMENT_FEATURES or tuple(meta["target_columns"]) != TARGET_COLUMNS:
        raise InputError(f"{path}: its element or target columns differ from this gnntrack's; "
                         f"simulate the events again")
    return meta


def read_events(directory: str | os.PathLike, limit: int | None = None) -> list[PflowEvent]:
    """The first `limit` events (all when None) of an event directory, in event order."""
    meta = read_meta(directory)
    events: list[PflowEvent] = []
    for name in meta["chunks"]:
        if limit is not None and len(events) >= limit:
            break
        path = Path(directory) / name
        try:
            with np.load(path, allow_pickle=False) as data:
                events += split_chunk({k: data[k] for k in data.files})
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
            raise InputError(f"{path}: cannot read particle-flow chunk ({exc}); simulate the events again") from exc
    return events[:limit]
