"""Metric-learning graphs of the whole detector (pixel + short + long strips), every hit (noise
included), no truth cuts; the embedding is trained on simulated mu = 200 events, its segments of
particles with pT >= 0.5 GeV as the positive pairs (scripts/graph_construction_table.py trains it
and writes the file that metric.embedding names).

    gnntrack build-graphs --input EVENTS --out GRAPHS --config experiments/graphs/metric_all.py \\
        --config.metric.embedding=RUN/embedding.npz
    ... --config experiments/graphs/metric_all.py:filter --config.filter.path=RUN/filter.npz

With the argument 'filter', the edge filter (gnntrack.graphs.filter) that filter.path names
prunes the graph (the same script trains it on the metric graphs).
"""

from gnntrack.graphs.config import default_graph_config


def get_config(arg=None):
    c = default_graph_config()
    c.selection = "all"
    c.method = "metric"
    c.metric.embedding = "embedding.npz"
    c.metric.train_pt_min = 0.5
    c.metric.margin = 0.5
    c.metric.radius = 0.25
    c.metric.k_max = 128
    c.metric.eps = 1.0  # approximate neighbours: same pT > 1 efficiency, a much faster search
    c.metric.hidden = 128
    c.metric.dim = 12
    c.metric.steps = 3000
    c.filter.steps = 3000
    if arg == "filter":
        c.filter.path = "filter.npz"
        # balanced training makes the scores of a fake-dominated graph low: a low threshold keeps
        # ~99% of the true segments and still drops most fakes
        c.filter.threshold = 0.05
    elif arg is not None:
        raise ValueError(f"unknown argument {arg!r}: use metric_all.py or metric_all.py:filter")
    return c
