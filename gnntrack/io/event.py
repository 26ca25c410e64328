"""The in-memory event: TrackML tables as pandas DataFrames.

Column names and dtypes follow the TrackML challenge format exactly, so an event read from the
real data set and one produced by `gnntrack.detector.simulate` are interchangeable.

Units: positions in mm, momenta in GeV, charge in units of e.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

# Column -> dtype, in file order. These are the TrackML challenge schemas.
HITS_COLUMNS: dict[str, type] = {
    "hit_id": np.int64, "x": np.float32, "y": np.float32, "z": np.float32,
    "volume_id": np.int32, "layer_id": np.int32, "module_id": np.int32,
}
TRUTH_COLUMNS: dict[str, type] = {
    "hit_id": np.int64, "particle_id": np.int64,
    "tx": np.float32, "ty": np.float32, "tz": np.float32,
    "tpx": np.float32, "tpy": np.float32, "tpz": np.float32, "weight": np.float32,
}
# Real TrackML particle files exist with and without `particle_type`; both are accepted.
PARTICLES_COLUMNS: dict[str, type] = {
    "particle_id": np.int64, "particle_type": np.int32,
    "vx": np.float32, "vy": np.float32, "vz": np.float32,
    "px": np.float32, "py": np.float32, "pz": np.float32,
    "q": np.int32, "nhits": np.int32,
}
PARTICLES_OPTIONAL = ("particle_type",)
CELLS_COLUMNS: dict[str, type] = {"hit_id": np.int64, "ch0": np.int32, "ch1": np.int32, "value": np.float32}

PARTS = ("hits", "truth", "particles", "cells")
SCHEMAS = {"hits": HITS_COLUMNS, "truth": TRUTH_COLUMNS, "particles": PARTICLES_COLUMNS, "cells": CELLS_COLUMNS}


@dataclasses.dataclass
class Event:
    """One collision event in TrackML tables.

    Attributes:
      event_id: the integer in the file prefix `event<9 digits>`.
      hits: [n_hits] hit_id, x, y, z (mm), volume_id, layer_id, module_id.
      truth: [n_hits] or None (test sets have no truth). particle_id 0 marks noise.
      particles: [n_particles] or None. Momenta in GeV, vertex in mm.
      cells: [n_cells] or None (optional in TrackML; the simulation writes them with its `cells` key).
    """

    event_id: int
    hits: pd.DataFrame
    truth: pd.DataFrame | None = None
    particles: pd.DataFrame | None = None
    cells: pd.DataFrame | None = None

    @property
    def prefix_name(self) -> str:
        """File-name prefix used by TrackML, e.g. `event000001000`."""
        return event_prefix_name(self.event_id)

    def __len__(self) -> int:
        return len(self.hits)


def event_prefix_name(event_id: int) -> str:
    """`event` followed by the id in 9 digits, as in the TrackML data set."""
    return f"event{int(event_id):09d}"
