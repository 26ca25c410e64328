"""Events end to end: layouts, targets against the generator, the same bytes for the same seed."""

import numpy as np

from gnntrack.cli import main
from gnntrack.pflow.store import read_events, read_meta
from gnntrack.pflow.types import ELEMENT_FEATURES, TARGET_COLUMNS
from tests.pflow.conftest import TINY_ARGS


def test_events_have_elements_targets_baseline_and_generator_particles(pflow_dir):
    events = read_events(pflow_dir)
    assert [e.event_id for e in events] == [0, 1, 2]
    for e in events:
        n = len(e.elements)
        assert e.elements.shape == (n, len(ELEMENT_FEATURES)) and e.elements.dtype == np.float32
        assert e.targets.shape == e.baseline.shape == (n, len(TARGET_COLUMNS))
        is_track = e.elements[:, 0] == 1
        assert (is_track != (e.elements[:, 1] == 1)).all()  # every element is a track or a cluster
        assert (e.particle[is_track] >= 0).all()
        owned = e.targets[:, 0] > 0
        # a target's energy is at least that of the generator particle that made the element
        # (more when leftovers merged into it); the 1e-3 absorbs float32 rounding
        main_energy = e.gen[e.particle[owned & is_track], 6]
        assert (e.targets[owned & is_track, 6] >= main_energy * (1 - 1e-3)).all()
        assert e.gen_pid.shape == e.gen_collision.shape == (len(e.gen),)
    meta = read_meta(pflow_dir)
    assert meta["chunks"] == ["chunk_00000.npz", "chunk_00001.npz"] and meta["config"]["pileup"] == 0.0


def test_the_same_seed_gives_the_same_bytes_with_any_number_of_workers(pflow_dir, tmp_path):
    # bitwise: every chunk is made from its own seeds with the same code on the same machine
    out = tmp_path / "again"
    assert main(["pflow", "simulate", "--out", str(out), *TINY_ARGS, "--workers", "2"]) == 0
    for name in ("chunk_00000.npz", "chunk_00001.npz"):
        assert (out / name).read_bytes() == (pflow_dir / name).read_bytes()
