"""Cone-window graphs of LUXE-like crossings: bending point, window search vs brute force, config,
build-graphs end to end."""

import json
from pathlib import Path

import numpy as np
import pytest

from gnntrack.cli import main
from gnntrack.detector.luxe import LUXE, default_luxe_config, simulate_luxe_event, through_magnet
from gnntrack.detector.simulate import event_rng
from gnntrack.errors import ConfigError
from gnntrack.graphs.build import build_event, prepare, select_nodes
from gnntrack.graphs.cone import bend_slope, cone_edges, window_pairs
from gnntrack.graphs.config import luxe_graph_config, validate_graph_config

EXPERIMENT = Path(__file__).resolve().parents[2] / "experiments" / "graphs" / "luxe_cone.py"


def crossing(n=400, seed=0):
    c = default_luxe_config()
    c.n_particles = n
    return simulate_luxe_event(event_rng(seed, 0), c, event_id=1000)


def test_bend_slope_is_the_exit_slope_of_the_arc():
    """A positron entering the field along z at x = 0 leaves on the line through the bending
    point: bend_slope of any point on that line is the exit slope (from 1 to 14 GeV)."""
    p = np.array([1.2, 2.0, 5.0, 14.0])
    zero = np.zeros(4)
    x, _, tx, _, through = through_magnet(zero, zero, zero, zero, p, 0.95)
    assert through.all()
    z2 = LUXE["magnet_z"][1]
    for z in (3955.9, 4261.9):
        s = bend_slope(x + tx * (z - z2), np.full(4, z), *LUXE["magnet_z"])
        np.testing.assert_allclose(s, tx, rtol=1e-6)


def test_window_pairs_enumerates_every_window():
    rng = np.random.default_rng(0)
    lo = rng.integers(0, 50, 200)
    hi = lo + rng.integers(-2, 9, 200)
    expected = [(i, j) for i in range(200) for j in range(lo[i], hi[i])]
    got = [(int(i), int(j)) for ii, jj in window_pairs(lo, hi, chunk=37) for i, j in zip(ii, jj)]
    assert got == expected


def test_cone_edges_equal_brute_force():
    """The sorted-window search finds exactly the pairs that pass the window conditions when
    every hit pair of every plane pair is checked."""
    config, layers, pairs = prepare(luxe_graph_config())
    config.chunk_size = 64                                   # many chunks
    nodes = select_nodes(crossing(150), config, layers)
    senders, receivers = cone_edges(nodes, pairs, config)
    cone = config.cone
    s = bend_slope(nodes.x, nodes.z, cone.magnet_z_min, cone.magnet_z_max)
    expected = set()
    for la, lb in pairs:
        a, b = np.flatnonzero(nodes.layer == la), np.flatnonzero(nodes.layer == lb)
        ia, ib = np.repeat(a, b.size), np.tile(b, a.size)
        dz = nodes.z[ib] - nodes.z[ia]
        scatter = cone.scattering_tolerance * np.abs(s[ia])
        ok = (np.abs(nodes.x[ib] - nodes.x[ia] - s[ia] * dz)
              <= (cone.x_slope_tolerance + scatter) * dz + cone.x_tolerance)
        ok &= (np.abs(nodes.y[ib] - nodes.y[ia] * (1 + dz / nodes.z[ia]))
               <= (cone.y_slope_tolerance + scatter) * dz + cone.y_tolerance)
        expected |= set(zip(ia[ok].tolist(), ib[ok].tolist()))
    got = list(zip(senders.tolist(), receivers.tolist()))
    assert len(got) == len(set(got)) and set(got) == expected and len(expected) > 100
    assert (nodes.z[senders] < nodes.z[receivers]).all()


def test_small_crossing_efficiency_and_stave_overlaps():
    graphs, stats = build_event(crossing(500), luxe_graph_config())
    g = graphs[0]
    assert stats["found_segments"] / stats["true_segments"] >= 0.97
    assert stats["true_edges"] / stats["edges"] >= 0.2
    # stave A -> stave B of one layer (6 mm apart) are among the true edges
    lay_s, lay_r = g.layer[g.graph.senders], g.layer[g.graph.receivers]
    overlap = (lay_s % 2 == 0) & (lay_r == lay_s + 1)
    assert g.y[overlap].sum() >= 10


def test_config_choices_are_checked():
    c = luxe_graph_config()
    c.detector = "trackml"
    with pytest.raises(ConfigError, match="graph.method='cone' .* set graph.detector='luxe'"):
        validate_graph_config(c)
    c = luxe_graph_config()
    c.method = "geometric"          # lines from the beam line never meet the LUXE staves
    with pytest.raises(ConfigError, match="graph.method='geometric' finds no edges on graph.detector='luxe'"):
        validate_graph_config(c)
    c = luxe_graph_config()
    c.method = "cones"
    with pytest.raises(ConfigError, match="graph.method must be one of geometric, cone"):
        validate_graph_config(c)
    c = luxe_graph_config()
    c.cone.x_tolerance = -1.0
    with pytest.raises(ConfigError, match="graph.cone.x_tolerance must be >= 0"):
        validate_graph_config(c)


def test_build_graphs_cli_on_a_crossing(tmp_path):
    assert main(["simulate", "--detector", "luxe", "--particles", "300", "--out", str(tmp_path / "ev"),
                 "--no-progress"]) == 0
    assert main(["build-graphs", "--input", str(tmp_path / "ev"), "--out", str(tmp_path / "g"),
                 "--config", str(EXPERIMENT), "--no-progress"]) == 0
    summary = json.loads((tmp_path / "g" / "summary.json").read_text())
    assert summary["efficiency"] >= 0.97 and summary["config"]["method"] == "cone"
    assert summary["layer_pairs"][0] == ["v40l2", "v40l4"]
