"""Ways a checkpoint directory gets damaged on disk (a full disk, a bad copy, a crashed file
system), for the fallback tests of the checkpoint, loop and evaluate modules."""

import shutil
from pathlib import Path

import numpy as np

DAMAGE = ("truncated_data", "random_data", "missing_state", "empty_metadata", "truncated_manifest",
          "empty_meta")


def _data_files(state: Path) -> list[Path]:
    return sorted(p for p in state.rglob("*") if p.is_file() and p.parent.name == "d")


def damage(step_dir: Path, kind: str) -> None:
    """Damages one orbax step directory `step_dir` (e.g. RUN/checkpoints/6) as `kind` says."""
    state = Path(step_dir) / "state"
    if kind == "truncated_data":
        for f in _data_files(state):
            f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    elif kind == "random_data":
        rng = np.random.default_rng(0)
        for f in _data_files(state):
            f.write_bytes(rng.integers(0, 256, f.stat().st_size, dtype=np.uint8).tobytes())
    elif kind == "missing_state":
        shutil.rmtree(state)
    elif kind == "empty_metadata":
        (state / "_METADATA").write_text("")
    elif kind == "truncated_manifest":
        for m in state.rglob("manifest.ocdbt"):
            m.write_bytes(m.read_bytes()[:20])
    elif kind == "empty_meta":
        (Path(step_dir) / "meta" / "metadata").write_text("")
    else:
        raise ValueError(kind)
