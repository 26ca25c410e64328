"""Hit-graph construction config: `default_graph_config()` and its validation.

    config = default_graph_config()
    config.selection = "pixel"; config.pt_min = 1.0
    graphs = build_event_graphs(event, config)

Keys (units: mm, rad, GeV):
  selection: which hits become nodes: 'pixel' (volumes 7, 8, 9), 'barrel' (all barrel layers,
    HEP.TrkX), 'barrel_pixel' (pixel barrel only) or 'all'.
  pt_min: truth cut (GeV) for training-graph studies: keep only hits of particles with pT >= pt_min
    (noise is then dropped too). 0 = no cut. Needs truth.
  remove_noise: drop hits with particle_id == 0 (needs truth).
  remove_duplicates: keep one hit per (particle, layer): the first along the particle's path.
    Noise hits are never treated as duplicates.
  phi_slope_max: |dphi / dr| cut (rad/mm). z0_max: |z0| cut (mm) of the line through both hits at
    r = 0. deta_max: |deta| cut (0 = off).
  method: how edges are found: 'geometric' (layer pairs + phi window, the HEP.TrkX cuts below) or
    'cone' (planar layers behind a dipole: gnntrack.graphs.cone; its cuts are the `cone` group)
    or 'metric' (learned embedding: gnntrack.graphs.metric_learning; the `metric` group).
  detector: whose layer table reads the hits: 'trackml' (gnntrack.detector.geometry) or 'luxe'
    (gnntrack.detector.luxe).
  cone: magnet_z_min, magnet_z_max (mm): the dipole's extent; max_dz (mm): farthest plane pair;
    x_tolerance, y_tolerance (mm) and x_slope_tolerance, y_slope_tolerance, scattering_tolerance
    (rad, the last per unit bending slope): the window (see gnntrack.graphs.cone).
  layer_pairs: 'geometric' (straight lines from the luminous region |z| <= geometric_z0_max,
    consecutive layers crossed, see layer_map.geometric_layer_pairs) or a path to a learned
    layer-map JSON (layer_map.save_layer_map).
  geometric_skip: also connect a layer to the k-th next one along such lines, k <= 1 + skip
    (recovers segments across a missed hit; 0 = only adjacent layers).
  layer_map_min_count: when learning a layer map, keep pairs seen at least this many times.
  n_phi_sections, n_eta_sections, section_overlap_phi (rad), section_overlap_eta, section_eta_max,
  rotate_sections: HEP.TrkX-style sectioning into n_phi x n_eta graphs (1 x 1 = whole event).
  exact_sections, section_hops: K > 0 splits the event into K exact sections along the cone's
    bending slope (constant along a track; method 'cone' only), each with a halo of section_hops
    edges: set it to the model's message-passing iterations (see gnntrack.graphs.sections).
  section_by: 'slope' (those slices: tracks stay whole, sections barely touch) or 'random' (every
    hit's home section drawn at random, seeded by the event id: GST's random segments, which cut
    tracks, so a segment's halo matters).
  features.node: names from NODE_FEATURES; features.edge: names from EDGE_FEATURES.
  max_nodes, max_edges: refuse (InputError) a graph larger than this (0 = no limit).
  chunk_size: candidate pairs examined at once; bounds the temporary memory of the search.
  compress: write graph files with np.savez_compressed (smaller, slower).
  metric: for method 'metric' (pairs close in a learned embedding, see metric_learning; the
    layer-pair and cut keys are then unused): embedding (file written by fit.fit_embedding, needed by method 'metric'), radius (in
    embedding units), k_max (nearest neighbours kept per hit) and eps (approximate neighbour search:
    each neighbour within 1 + eps times the true distance; 0 = exact) of the graph; the rest trains
    the embedding: dim, hidden, n_layers, margin (hinge of the negatives), positives ('segments':
    true segments are the positive pairs, other pairs of one particle are left alone; 'particle':
    any two hits of one particle), train_pt_min (GeV: particles below it give no positive pairs),
    steps, learning_rate,
    batch_pairs (positive, random and hard negative pairs each per step), hard_k (neighbours
    mined per query hit), mine_every (steps between minings), seed.
  filter: path (file written by fit.fit_filter; '' = no filter) and threshold (edges scoring
    below it are dropped) of the per-edge filter that prunes the graph (see filter.py); the rest
    trains it: hidden, n_layers, steps, learning_rate, batch_edges, seed.
"""

from __future__ import annotations

import ml_collections

from gnntrack.errors import ConfigError
from gnntrack.keys import check_known_keys

SELECTIONS = ("pixel", "barrel", "barrel_pixel", "all")
METHODS = ("geometric", "cone", "metric")
POSITIVES = ("segments", "particle")
DETECTORS = ("trackml", "luxe")
SECTION_BY = ("slope", "random")
# Node features: r/1000 mm, phi/pi, z/1000 mm (HEP.TrkX), pseudorapidity, cell count, cell charge,
# incidence angles across / along the sensor from the cluster's shape (gnntrack.detector.cells).
NODE_FEATURES = ("r", "phi", "z", "eta", "cell_count", "cell_value", "cell_angle_u", "cell_angle_v")
# Edge features: dr/1000 mm, dphi/pi, dz/1000 mm, dR = sqrt(deta^2 + dphi^2), dphi/dr in rad/m.
EDGE_FEATURES = ("dr", "dphi", "dz", "dR", "phi_slope")


def cell_feature_names(config) -> tuple[str, ...]:
    """The node features of a graph config read from the event's cells table, in config order."""
    return tuple(str(n) for n in config.features.node if str(n).startswith("cell_"))


def event_parts(config) -> tuple[str, ...]:
    """The TrackML parts a graph config reads: cells (optional in TrackML, and large) only when a
    node feature uses them."""
    return ("hits", "truth", "particles") + (("cells",) if cell_feature_names(config) else ())


def default_graph_config() -> ml_collections.ConfigDict:
    """The default: full pixel detector, no truth cuts, geometric layer pairs, the cuts tuned for
    pT >= 0.5 GeV (PIXEL_CUTS)."""
    c = ml_collections.ConfigDict()
    c.selection = "pixel"
    c.pt_min = 0.0
    c.remove_noise = False
    c.remove_duplicates = False
    c.phi_slope_max = 0.0009
    c.z0_max = 250.0
    c.deta_max = 0.0
    c.method = "geometric"
    c.detector = "trackml"
    c.cone = cone_defaults()
    c.layer_pairs = "geometric"
    c.geometric_skip = 1
    c.geometric_z0_max = 250.0
    c.geometric_eta_max = 4.5
    c.layer_map_min_count = 2
    c.n_phi_sections = 1
    c.n_eta_sections = 1
    c.section_overlap_phi = 0.05
    c.section_overlap_eta = 0.1
    c.section_eta_max = 5.0
    c.rotate_sections = True
    c.exact_sections = 0
    c.section_hops = 4
    c.section_by = "slope"
    c.features = ml_collections.ConfigDict()
    c.features.node = ("r", "phi", "z")
    c.features.edge = ("dr", "dphi", "dz", "dR", "phi_slope")
    c.max_nodes = 0
    c.max_edges = 0
    c.chunk_size = 1_000_000
    c.compress = False
    c.metric = ml_collections.ConfigDict(dict(
        embedding="", radius=0.2, k_max=32, eps=0.0, dim=8, hidden=64, n_layers=3, margin=0.2, positives="segments",
        train_pt_min=0.0, steps=2000, learning_rate=2e-3, batch_pairs=2048, hard_k=8, mine_every=100, seed=0))
    c.filter = ml_collections.ConfigDict(dict(
        path="", threshold=0.5, hidden=64, n_layers=2, steps=1000, learning_rate=2e-3,
        batch_edges=4096, seed=0))
    return c


# Keys of the learned stages that must be > 0 (floats) or >= 1 (integers).
_POSITIVE = {"metric": ("radius", "margin", "learning_rate"), "filter": ("learning_rate",)}
_AT_LEAST_ONE = {"metric": ("k_max", "dim", "hidden", "n_layers", "steps", "batch_pairs", "hard_k", "mine_every"),
                 "filter": ("hidden", "n_layers", "steps", "batch_edges")}


def cone_defaults() -> ml_collections.ConfigDict:
    """The cone window for the LUXE-like tracker: tolerances cover ~99.5 % of the true segments of
    a simulated crossing in each pair class (stave overlap, layer to layer)."""
    c = ml_collections.ConfigDict()
    c.magnet_z_min = 1434.0
    c.magnet_z_max = 2672.0
    c.max_dz = 150.0
    c.x_tolerance = 0.035
    c.y_tolerance = 0.035
    c.x_slope_tolerance = 1.2e-3
    c.y_slope_tolerance = 0.35e-3
    c.scattering_tolerance = 4.5e-3
    return c


def validate_graph_config(config: ml_collections.ConfigDict, where: str = "graph") -> None:
    """Raises ConfigError naming the key for unknown keys or out-of-range values."""
    check_known_keys(config, default_graph_config(), where)
    get = lambda key: config.get(key, default_graph_config()[key])  # noqa: E731
    if get("selection") not in SELECTIONS:
        raise ConfigError(f"{where}.selection must be one of {', '.join(SELECTIONS)}, "
                          f"got {get('selection')!r}")
    for key in ("pt_min", "phi_slope_max", "z0_max", "deta_max", "section_overlap_phi",
                "section_overlap_eta", "geometric_z0_max"):
        if float(get(key)) < 0:
            raise ConfigError(f"{where}.{key} must be >= 0, got {get(key)!r}")
    for key in ("phi_slope_max", "z0_max"):
        if float(get(key)) <= 0:
            raise ConfigError(f"{where}.{key} must be > 0, got {get(key)!r}")
    for key in ("n_phi_sections", "n_eta_sections", "chunk_size"):
        if int(get(key)) < 1:
            raise ConfigError(f"{where}.{key} must be >= 1, got {get(key)!r}")
    for key in ("max_nodes", "max_edges", "geometric_skip", "layer_map_min_count"):
        if int(get(key)) < 0:
            raise ConfigError(f"{where}.{key} must be >= 0, got {get(key)!r}")
    for key, known in (("method", METHODS), ("detector", DETECTORS)):
        if get(key) not in known:
            raise ConfigError(f"{where}.{key} must be one of {', '.join(known)}, got {get(key)!r}")
    if get("method") == "cone" and get("detector") != "luxe":
        raise ConfigError(f"{where}.method='cone' works on planar layers behind a dipole: "
                          f"set {where}.detector='luxe'")
    if get("method") == "geometric" and get("detector") == "luxe":
        raise ConfigError(f"{where}.method='geometric' finds no edges on {where}.detector='luxe' (its "
                          "lines start on the beam line and miss the staves behind the magnet): "
                          f"set {where}.method='cone'")
    if int(get("exact_sections")) < 0 or int(get("section_hops")) < 0:
        raise ConfigError(f"{where}.exact_sections and {where}.section_hops must be >= 0")
    if get("section_by") not in SECTION_BY:
        raise ConfigError(f"{where}.section_by must be one of {', '.join(SECTION_BY)}, got {get('section_by')!r}")
    if int(get("exact_sections")) > 0 and get("method") != "cone":
        raise ConfigError(f"{where}.exact_sections slices along the cone's bending slope: "
                          f"set {where}.method='cone' (or {where}.exact_sections=0)")
    if int(get("exact_sections")) > 0 and int(get("n_phi_sections")) * int(get("n_eta_sections")) > 1:
        raise ConfigError(f"{where}.exact_sections and {where}.n_phi_sections x n_eta_sections > 1 "
                          "exclude each other: choose one")
    cone = get("cone")
    for key in cone.keys():
        if float(cone[key]) < 0:
            raise ConfigError(f"{where}.cone.{key} must be >= 0, got {cone[key]!r}")
    if not float(cone.magnet_z_max) > float(cone.magnet_z_min):
        raise ConfigError(f"{where}.cone.magnet_z_max must be > magnet_z_min")
    features = get("features")
    for group, known in (("node", NODE_FEATURES), ("edge", EDGE_FEATURES)):
        names = tuple(features.get(group, ()))
        bad = [n for n in names if n not in known]
        if bad:
            raise ConfigError(f"{where}.features.{group}: unknown feature(s) {bad}; known: {', '.join(known)}")
        if not names:
            raise ConfigError(f"{where}.features.{group} must name at least one feature")
    if not isinstance(get("layer_pairs"), str) or not get("layer_pairs"):
        raise ConfigError(f"{where}.layer_pairs must be 'geometric' or a layer-map JSON path")
    _validate_stages(get, where)


def _validate_stages(get, where: str) -> None:
    for group, keys in _POSITIVE.items():
        for key in keys:
            if not float(get(group).get(key, 1.0)) > 0:
                raise ConfigError(f"{where}.{group}.{key} must be > 0, got {get(group)[key]!r}")
    for group, keys in _AT_LEAST_ONE.items():
        for key in keys:
            if int(get(group).get(key, 1)) < 1:
                raise ConfigError(f"{where}.{group}.{key} must be >= 1, got {get(group)[key]!r}")
    if float(get("metric").get("eps", 0.0)) < 0:
        raise ConfigError(f"{where}.metric.eps must be >= 0, got {get('metric')['eps']!r}")
    if get("metric").get("positives", "segments") not in POSITIVES:
        raise ConfigError(f"{where}.metric.positives must be one of {', '.join(POSITIVES)}, "
                          f"got {get('metric')['positives']!r}")
    if not 0.0 <= float(get("filter").get("threshold", 0.5)) <= 1.0:
        raise ConfigError(f"{where}.filter.threshold must be in [0, 1], got {get('filter')['threshold']!r}")


# Per-pT cuts (phi_slope_max rad/mm, z0_max mm) for full-pixel graphs, tuned on 3 simulated
# mu = 200 events (scripts/graph_table.py, seed 1) for segment efficiency >= 0.995 at each pT
# cut with the highest purity found: phi_slope_max ~ 2.3 / (2 R) at pT = pt_min, i.e. about
# 0.00015 rad/mm / pT[GeV] times 1.75 (pT = 2) ... 2.8 (pT = 0.5), and z0_max ~ 4.5 sigma_z of
# the luminous region (55 mm) -- multiple scattering between close endcap disks (dr ~ 5 mm) and
# the z spread of the vertices are what the margins cover. 0.0 (no pT cut) uses the 0.5 cuts.
PIXEL_CUTS: dict[float, tuple[float, float]] = {
    2.0: (0.0003, 250.0),
    1.5: (0.00035, 250.0),
    1.0: (0.000525, 250.0),
    0.7: (0.00065, 250.0),
    0.5: (0.0009, 250.0),
    0.0: (0.0009, 250.0),
}


def pixel_config(pt_min: float) -> ml_collections.ConfigDict:
    """Full-pixel (barrel + both endcaps) training graphs as in the interaction-network paper:
    hits of particles with pT >= pt_min, noise and same-layer duplicates removed (pt_min = 0:
    every hit, noise included), cuts from PIXEL_CUTS."""
    c = default_graph_config()
    c.selection = "pixel"
    c.pt_min = float(pt_min)
    c.remove_noise = pt_min > 0
    c.remove_duplicates = pt_min > 0
    key = min((k for k in PIXEL_CUTS if k <= pt_min), key=lambda k: pt_min - k)
    c.phi_slope_max, c.z0_max = PIXEL_CUTS[key]
    return c


def barrel_config(pt_min: float) -> ml_collections.ConfigDict:
    """HEP.TrkX barrel graphs (pixel + strip barrels, 10 layers) split in 8 phi x 2 eta sections;
    pt_min = 1 is HEP.TrkX's "small" data set."""
    c = default_graph_config()
    c.selection = "barrel"
    c.pt_min = float(pt_min)
    c.remove_noise = pt_min > 0
    c.remove_duplicates = pt_min > 0
    # Adjacent layers only, as HEP.TrkX: skip pairs across the strip barrels have long lever arms
    # (wide phi windows, weak z0 cut) and cost more purity than the ~1.3% segments they recover.
    c.geometric_skip = 0
    c.phi_slope_max = 0.0005 if pt_min >= 1 else 0.0009
    c.z0_max = 200.0
    c.n_phi_sections = 8
    c.n_eta_sections = 2
    return c


def luxe_graph_config() -> ml_collections.ConfigDict:
    """Cone-window graphs of LUXE-like crossings: every hit (noise included), no truth cuts."""
    c = default_graph_config()
    c.selection = "all"
    c.method = "cone"
    c.detector = "luxe"
    return c
