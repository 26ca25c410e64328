"""Small hand-made TrackML events for the I/O tests (no simulation needed)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gnntrack.io.event import Event


def make_event(event_id: int = 1000, *, particle_type: bool = True, cells: bool = False) -> Event:
    """8 hits in 3 volumes; particles 11 (3 hits, pT 2 GeV, η 0), 22 (3 hits, pT 0.5 GeV) and
    33 (0 hits, pT 5 GeV, |η| > 2.5); 2 noise hits. Float values are not exact decimals in float32
    (e.g. 0.1) so that the round trip tests the formatting."""
    hits = pd.DataFrame({
        "hit_id": np.arange(1, 9, dtype=np.int64),
        "x": np.array([32.1, 72.0, 116.5, -31.9, -71.7, 0.1, 600.25, -1e-3], np.float32),
        "y": np.array([0.5, 1.25, 2.0, -3.1, -6.9, 33.3, 10.0, 250.0], np.float32),
        "z": np.array([-10.0, -20.5, -30.75, 40.0, 80.0, 600.0, -1500.0, 1234.5678], np.float32),
        "volume_id": np.array([8, 8, 8, 8, 8, 9, 7, 13], np.int32),
        "layer_id": np.array([2, 4, 6, 2, 4, 2, 14, 2], np.int32),
        "module_id": np.array([1, 2, 3, 4, 5, 6, 7, 8], np.int32),
    })
    pid = np.array([11, 11, 11, 22, 22, 0, 22, 0], np.int64)
    truth = pd.DataFrame({
        "hit_id": hits["hit_id"].to_numpy(), "particle_id": pid,
        "tx": hits["x"].to_numpy(), "ty": hits["y"].to_numpy(), "tz": hits["z"].to_numpy(),
        "tpx": np.array([2.0, 1.99, 1.98, 0.3, 0.29, 0.0, 0.28, 0.0], np.float32),
        "tpy": np.array([0.01, 0.1, 0.2, 0.4, 0.41, 0.0, 0.42, 0.0], np.float32),
        "tpz": np.array([0.0, 0.0, 0.0, 0.1, 0.1, 0.0, 0.1, 0.0], np.float32),
        "weight": np.array([0.2, 0.2, 0.2, 0.1, 0.15, 0.0, 0.15, 0.0], np.float32),
    })
    particles = pd.DataFrame({
        "particle_id": np.array([11, 22, 33], np.int64),
        "particle_type": np.array([13, -211, 11], np.int32),
        "vx": np.array([0.01, -0.02, 0.0], np.float32), "vy": np.array([0.0, 0.03, 0.0], np.float32),
        "vz": np.array([5.5, -12.25, 0.0], np.float32),
        "px": np.array([2.0, 0.3, 0.0], np.float32), "py": np.array([0.0, 0.4, 5.0], np.float32),
        "pz": np.array([0.0, 0.1, 200.0], np.float32),
        "q": np.array([-1, 1, -1], np.int32), "nhits": np.array([3, 3, 0], np.int32),
    })
    if not particle_type:
        particles = particles.drop(columns="particle_type")
    cell_table = None
    if cells:
        cell_table = pd.DataFrame({
            "hit_id": np.array([1, 1, 2, 5], np.int64), "ch0": np.array([10, 11, 3, 7], np.int32),
            "ch1": np.array([20, 20, 4, 8], np.int32), "value": np.array([0.25, 0.1, 1.0, 0.3], np.float32),
        })
    return Event(event_id=event_id, hits=hits, truth=truth, particles=particles, cells=cell_table)


@pytest.fixture
def event() -> Event:
    return make_event()


@pytest.fixture
def event_factory():
    """`make_event` as a fixture (test modules cannot import a conftest by name reliably)."""
    return make_event
