"""`gnntrack build-graphs --input EVENTS_DIR --out GRAPH_DIR --config experiments/graphs/X.py`."""

from __future__ import annotations

import argparse

HELP = "build hit graphs (layer-pair segments, truth labels, features) for a directory of TrackML events"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from gnntrack.cli import add_config_arguments

    parser.add_argument("--input", required=True, help="directory of TrackML event files (csv or csv.gz)")
    parser.add_argument("--out", required=True, help="output directory for graph files and summary.json")
    add_config_arguments(parser, required=False)
    parser.add_argument("--workers", type=int, default=1, help="processes over events (default 1)")
    parser.add_argument("--layer-map", default=None, help="learned layer-map JSON to use for the layer pairs")
    parser.add_argument("--learn-layer-map", type=int, default=0, metavar="N_EVENTS",
                        help="learn the layer map from the truth of the first N events, save it as "
                             "OUT/layer_map.json and use it")
    parser.add_argument("--limit", type=int, default=None, help="only the first N events")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def graph_config_from(config):
    """The graph section of a config: the config itself, or `config.graph` of a full run config."""
    if "selection" not in config and "graph" in config:
        return config.graph
    return config


def run(args: argparse.Namespace) -> int:
    import json

    from gnntrack.config import apply_overrides, load_config
    from gnntrack.errors import InputError
    from gnntrack.graphs.config import default_graph_config
    from gnntrack.graphs.store import build_graph_dir
    from gnntrack.io.atomic import check_directory_path

    check_directory_path(args.out, "--out")
    if args.workers < 1:
        raise InputError(f"--workers must be >= 1, got {args.workers}")
    if args.learn_layer_map < 0:
        raise InputError(f"--learn-layer-map must be >= 0, got {args.learn_layer_map}")
    if args.config:
        config = graph_config_from(load_config(args.config, args.overrides))
    else:
        config = default_graph_config()
        config.lock()
        apply_overrides(config, args.overrides)
    summary = build_graph_dir(args.input, args.out, config, workers=args.workers, layer_map=args.layer_map,
                              learn_layer_map=args.learn_layer_map, limit=args.limit,
                              progress=not args.no_progress)
    keys = ("events", "graphs", "mean_nodes", "mean_edges", "efficiency", "purity", "seconds_per_event")
    keys += ("filter",) if "filter" in summary else ()  # reduction and kept efficiency of graph.filter
    print(json.dumps({k: summary.get(k) for k in keys}, indent=2))
    print(f"wrote {summary['graphs']} graph file(s) and summary.json to {args.out}")
    return 0
