"""Layer tables and layer pairs: geometric pairs, learned maps (round trip), bad files."""

import json

import numpy as np
import pytest

from tests.graphs.graph_events import random_event
from gnntrack.errors import InputError
from gnntrack.graphs.build import build_event, count_event_layer_pairs, prepare
from gnntrack.graphs.config import default_graph_config
from gnntrack.graphs.layer_map import (default_layer_table, geometric_layer_pairs, learned_layer_pairs,
                                       load_layer_map, save_layer_map, trackml_layer_table)

LAYERS = trackml_layer_table()


def _names(pairs):
    return {(LAYERS.name(a), LAYERS.name(b)) for a, b in pairs}


def test_layer_index_and_selection():
    idx = LAYERS.index([8, 8, 7, 42], [2, 8, 14, 2])
    assert idx[-1] == -1 and (idx[:3] >= 0).all()
    assert LAYERS.is_barrel[idx[0]] and not LAYERS.is_barrel[idx[2]]
    assert LAYERS.selection_mask("pixel").sum() == 18
    assert LAYERS.selection_mask("barrel").sum() == 10
    assert LAYERS.selection_mask("barrel_pixel").sum() == 4


def test_default_table_follows_the_detector():
    table = default_layer_table()
    try:
        from gnntrack.detector.geometry import default_detector
    except ImportError:
        pytest.skip("no detector module")
    det = default_detector()
    idx = table.index(det.volume_id, det.layer_id)
    assert np.array_equal(idx, det.layer_index(det.volume_id, det.layer_id))


def test_geometric_pairs_pixel():
    names = _names(geometric_layer_pairs(LAYERS, "pixel", skip=0))
    # adjacent barrel layers
    assert {("v8l2", "v8l4"), ("v8l4", "v8l6"), ("v8l6", "v8l8")} <= names
    # barrel -> first disk on both sides (layer 14 is the innermost disk of volume 7)
    assert {("v8l2", "v9l2"), ("v8l2", "v7l14")} <= names
    # disk -> next disk on both sides, pointing outwards
    assert {("v9l2", "v9l4"), ("v9l12", "v9l14"), ("v7l14", "v7l12"), ("v7l4", "v7l2")} <= names
    assert ("v9l4", "v9l2") not in names and ("v8l4", "v8l2") not in names
    skip = _names(geometric_layer_pairs(LAYERS, "pixel", skip=1))
    assert names < skip and ("v8l2", "v8l6") in skip and ("v9l2", "v9l6") in skip
    barrel = _names(geometric_layer_pairs(LAYERS, "barrel", skip=0))
    chain = ["v8l2", "v8l4", "v8l6", "v8l8", "v13l2", "v13l4", "v13l6", "v13l8", "v17l2", "v17l4"]
    assert set(zip(chain[:-1], chain[1:])) <= barrel
    # the pixel barrel is shorter in z: lines leaving it at its ends go straight to the strips
    assert ("v8l4", "v13l2") in barrel and all(b != "v8l2" for _, b in barrel)


def test_learned_map_round_trip(tmp_path):
    config = default_graph_config()
    counts = sum(count_event_layer_pairs(random_event(150, seed=s, duplicate_every=4), config, LAYERS)
                 for s in range(2))
    assert counts.sum() > 0 and np.trace(counts) == 0  # no same-layer transitions
    pairs = learned_layer_pairs(counts, min_count=1)
    path = save_layer_map(tmp_path / "map.json", LAYERS, counts, min_count=1, meta={"events": 2})
    doc = json.loads(path.read_text())
    assert doc["events"] == 2 and len(doc["pairs"]) == len(pairs)
    loaded = load_layer_map(path, LAYERS)
    assert np.array_equal(np.sort(loaded, axis=0), np.sort(pairs, axis=0))
    assert set(map(tuple, loaded.tolist())) == set(map(tuple, pairs.tolist()))
    # Ideal helices from the beam line only connect layers the geometric map allows.
    geo = set(map(tuple, geometric_layer_pairs(LAYERS, "pixel", skip=1).tolist()))
    assert set(map(tuple, pairs.tolist())) <= geo
    # A graph built with the learned map finds every true segment of a new event.
    event = random_event(100, seed=9)
    config.layer_pairs = str(path)
    _, stats = build_event(event, config, *prepare(config, LAYERS)[1:])
    assert stats["found_segments"] == stats["true_segments"] > 0
    # min_count drops rare pairs.
    assert len(learned_layer_pairs(counts, min_count=10 ** 9)) == 0


def test_learned_pairs_take_the_majority_direction():
    counts = np.zeros((4, 4), np.int64)
    counts[0, 1] = 10
    counts[1, 0] = 2   # loopers going back
    counts[2, 3] = 1
    assert learned_layer_pairs(counts, 3).tolist() == [[0, 1]]
    assert learned_layer_pairs(counts, 1).tolist() == [[0, 1], [2, 3]]


def test_bad_layer_map_files(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_layer_map(tmp_path / "nope.json", LAYERS)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="bad.json"):
        load_layer_map(bad, LAYERS)
    bad.write_text(json.dumps({"pairs": []}))
    with pytest.raises(InputError, match="not a gnntrack layer map"):
        load_layer_map(bad, LAYERS)
    bad.write_text(json.dumps({"format": "gnntrack.layer_map/1", "pairs": [{"from": [99, 2], "to": [8, 4]}]}))
    with pytest.raises(InputError, match="99/2"):
        load_layer_map(bad, LAYERS)
