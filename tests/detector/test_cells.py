"""Hit clusters: simulated cells follow the crossing's direction, and their shape reads it back."""

import numpy as np
import pandas as pd
import pytest

from gnntrack.detector.cells import SENSORS, cluster_shape, local_frames, sensors, simulate_cells
from gnntrack.detector.particles import generate_particles
from gnntrack.detector.simulate import default_simulation_config, event_rng, simulate_event
from gnntrack.errors import InputError
from gnntrack.io.event import CELLS_COLUMNS
from gnntrack.io.trackml import read_event, write_event


def _simulate(cells: bool, pileup: float = 5.0):
    config = default_simulation_config()
    config.pileup, config.cells = pileup, cells
    rng = event_rng(4, 0)
    return simulate_event(generate_particles(rng, config), rng, config, event_id=1000)


@pytest.fixture(scope="module")
def event():
    return _simulate(True)


def _tan(angle):
    return np.tan(angle * np.pi / 2)


def test_local_frames_are_orthonormal_with_w_the_surface_normal():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(2, 50)) * 100
    barrel = rng.random(50) < 0.5
    u, v, w = local_frames(x, y, barrel)
    frame = np.stack([u, v, w], axis=1)
    np.testing.assert_allclose(frame @ frame.transpose(0, 2, 1), np.broadcast_to(np.eye(3), (50, 3, 3)), atol=1e-12)
    radial = np.stack([x, y, 0 * x], axis=1) / np.hypot(x, y)[:, None]
    np.testing.assert_allclose(w[barrel], radial[barrel], atol=1e-12)
    np.testing.assert_allclose(w[~barrel], np.tile([0.0, 0.0, 1.0], ((~barrel).sum(), 1)))


def test_a_cluster_spans_the_crossing_and_its_shape_reads_the_angles_back():
    # barrel pixel hits on the +x axis: u = +y, v = +z, w = +x; directions with known slopes
    slopes_u = np.array([0.0, 0.3, -1.0, 2.0, 0.0])
    slopes_v = np.array([0.0, 0.0, 0.5, -3.0, 8.0])
    n = len(slopes_u)
    pitch_u, pitch_v, thick = SENSORS[8]
    cells = simulate_cells(np.random.default_rng(1), np.full(n, 8), np.ones(n, bool), np.full(n, 32.0), np.zeros(n),
                           np.zeros(n), np.ones(n), slopes_u, slopes_v, u0=np.full(n, 5.0), v0=np.full(n, 5.0))
    assert cells["hit"].tolist() == sorted(cells["hit"].tolist()) and set(cells["hit"]) == set(range(n))
    table = cells.rename(columns={"hit": "hit_id"})
    shape = cluster_shape(table, np.arange(n), np.full(n, 8))
    # the segment's projection spans thickness * slope; n cells cover it to within one pitch
    for name, slopes, pitch in (("cell_angle_u", slopes_u, pitch_u), ("cell_angle_v", slopes_v, pitch_v)):
        extent = _tan(shape[name]) * thick
        assert np.all(np.abs(extent - thick * np.abs(slopes)) <= pitch + 1e-9), name
    assert shape["cell_count"][0] == 1 and shape["cell_angle_u"][0] == shape["cell_angle_v"][0] == 0.0
    # every cell lies on the segment: channels within half the span of the centre's channel
    centre = np.floor(5.0 / pitch_u)
    assert np.all(np.abs(table["ch0"] - centre) <= np.ceil(thick * np.abs(slopes_u[table["hit_id"]]) / 2 / pitch_u) + 1)
    # the charge grows with the path in silicon (1 / cos of the incidence), shared over the cells
    path = np.sqrt(1 + slopes_u ** 2 + slopes_v ** 2)
    ratio = shape["cell_value"] / path
    assert np.all((ratio > 0.2) & (ratio < 3.0))


def test_simulated_cells_follow_the_truth_direction_and_leave_hits_unchanged(event):
    plain = _simulate(False)
    # the cells are drawn after every other random number of the event: the same draws, so the
    # hits and truth are bitwise those of the same event without cells (same code, same process)
    pd.testing.assert_frame_equal(plain.hits, event.hits)
    pd.testing.assert_frame_equal(plain.truth, event.truth)
    assert plain.cells is None
    cells = event.cells
    assert list(cells.columns) == list(CELLS_COLUMNS) and set(cells["hit_id"]) == set(event.hits["hit_id"])
    assert (cells["ch0"] >= 0).all() and (cells["ch1"] >= 0).all() and (cells["value"] > 0).all()
    hits, truth = event.hits, event.truth
    shape = cluster_shape(cells, hits["hit_id"].to_numpy(), hits["volume_id"].to_numpy())
    # on the barrel pixels the cluster's length along z reads |pz / p_radial| of the particle at the
    # crossing, to within one pitch over the thickness (grazing crossings are capped; skip them)
    pitch_u, pitch_v, thick = SENSORS[8]
    x, y = hits["x"].to_numpy(np.float64), hits["y"].to_numpy(np.float64)
    p_radial = (truth["tpx"] * x + truth["tpy"] * y) / np.hypot(x, y)
    slope_v = np.abs(truth["tpz"] / p_radial).to_numpy()
    pick = (hits["volume_id"] == 8).to_numpy() & (truth["particle_id"] > 0).to_numpy() & (slope_v < 10)
    assert pick.sum() > 100
    ch1 = cells.groupby("hit_id")["ch1"].min().reindex(hits["hit_id"]).to_numpy()
    inside = pick & (ch1 > 0)   # a cluster cut by its module's low edge is shorter
    error = np.abs(_tan(shape["cell_angle_v"][inside]) - slope_v[inside])
    assert np.all(error <= pitch_v / thick + 1e-4)


def test_cells_round_trip_through_trackml_files(event, tmp_path):
    write_event(event, tmp_path)
    back = read_event(tmp_path / event.prefix_name)
    pd.testing.assert_frame_equal(back.cells, event.cells)


def test_hits_without_cells_and_unknown_volumes():
    cells = pd.DataFrame({"hit_id": [2, 2, 5], "ch0": [3, 4, 7], "ch1": [1, 1, 9], "value": [0.5, 0.25, 1.0]})
    shape = cluster_shape(cells, np.array([1, 2, 5]), np.array([8, 8, 13]))
    np.testing.assert_allclose(shape["cell_count"], [0, 2, 1])
    np.testing.assert_allclose(shape["cell_value"], [0, 0.75, 1.0])
    np.testing.assert_allclose(_tan(shape["cell_angle_u"]), [0, SENSORS[8][0] / SENSORS[8][2], 0], atol=1e-12)
    assert set(cluster_shape(cells, np.array([1]))) == {"cell_count", "cell_value"}
    with pytest.raises(InputError, match="volume_id 42"):
        sensors(np.array([8, 42]))


def test_simulate_command_writes_cells_when_asked(tmp_path):
    from gnntrack.cli import main

    assert main(["simulate", "--out", str(tmp_path / "a"), "--pileup", "1", "--no-progress"]) == 0
    assert main(["simulate", "--out", str(tmp_path / "b"), "--pileup", "1", "--no-progress", "--set", "cells=True"]) == 0
    assert not list((tmp_path / "a").glob("*-cells.csv"))
    plain, with_cells = (read_event(tmp_path / d / "event000001000") for d in ("a", "b"))
    pd.testing.assert_frame_equal(plain.hits, with_cells.hits)
    assert plain.cells is None and set(with_cells.cells["hit_id"]) == set(with_cells.hits["hit_id"])
