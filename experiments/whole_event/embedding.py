"""Whole-event tracking, stage 1: the metric-learning embedding of every hit of the whole detector
(pixel + short + long strips, noise included, no truth cuts), sized for a 2-core CPU: trained on
two simulated mu = 200 events, the segments of particles of every pT (>= 0.1 GeV) as the positive
pairs: most of the TrackML score's weight lies below 1 GeV; the graph joins hits within
metric.radius in the embedding, at most metric.k_max of them. Every hit brings its cluster's size,
charge and shape (CELL_FEATURES, gnntrack.detector.cells): the events need a cells table
(`gnntrack simulate --set cells=True`; real TrackML events have one).

    python scripts/whole_event_table.py stages --out RUN      # RUN/embedding.npz, RUN/filter.npz
    gnntrack build-graphs --input EVENTS --out GRAPHS --config experiments/whole_event/embedding.py \\
        --config.metric.embedding=RUN/embedding.npz
"""

from pathlib import Path

from gnntrack.config import load_config

TRAIN_EVENTS, TRAIN_PILEUP = 2, 200.0
CELL_FEATURES = ("cell_count", "cell_value", "cell_angle_u", "cell_angle_v")


def get_config():
    # experiments/graphs/metric_all.py's embedding, with more neighbours: the filter prunes them
    c = load_config(Path(__file__).resolve().parents[1] / "graphs" / "metric_all.py")
    c.metric.k_max = 128
    # positives of every pT, and longer training for them: low-pT segments are the hard ones
    c.metric.train_pt_min = 0.1
    c.metric.steps = 6000
    # the cluster's shape tells the hit's direction: the same efficiency with fewer edges
    c.features.node = tuple(c.features.node) + CELL_FEATURES
    return c
