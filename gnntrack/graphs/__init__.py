"""gnntrack.graphs: hit graphs from TrackML-format events (host side, numpy).

    from gnntrack.graphs.build import build_event_graphs
    from gnntrack.graphs.config import default_graph_config
    graphs = build_event_graphs(event, default_graph_config())     # list[HitGraph]

Modules: config (graph config, per-pT pixel cuts), build (selection, O(N log N) layer-pair segment
search with phi_slope / z0 / deta cuts, HitGraph assembly, construction statistics), layer_map
(layer table, geometric and learned layer pairs), truth (path ordering, true segments), features,
sections (n_phi x n_eta split with overlap; exact sections with an n-hop halo), cone (cone-window
search for planar layers behind a dipole: the LUXE-like tracker), sampling (graphs thinned by whole
particles), store (npz files, build_graph_dir, summary.json),
report (efficiency / purity summaries), types (HitGraph), batching (padding to bucket ladders),
metric_learning (edges between hits close in a learned embedding), filter (per-edge classifier
that prunes a graph), mlp (their small MLPs and files), fit (their training, JAX + optax).

Vocabulary: a *segment* is a pair of hits of one particle on consecutive layer groups along its
path (see truth.py); *efficiency* = true segments present as edges / all true segments among the
graph's hits; *purity* = true edges / edges.
"""
