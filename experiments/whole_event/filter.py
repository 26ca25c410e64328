"""Whole-event tracking, stage 2: the edge filter that prunes the metric-learning graph of
experiments/whole_event/embedding.py before the GNN (a 2-layer MLP on both hits' inputs and the
segment's geometry), trained on that graph of the embedding's training events. Balanced training
makes the scores of a fake-dominated graph low: the threshold is low, to keep most true segments.
It is set by the edges a mu = 200 event may keep for the GNN's training (host memory).

    python scripts/whole_event_table.py stages --out RUN      # RUN/embedding.npz, RUN/filter.npz
    gnntrack build-graphs --input EVENTS --out GRAPHS --config experiments/whole_event/filter.py \\
        --config.metric.embedding=RUN/embedding.npz --config.filter.path=RUN/filter.npz
"""

from pathlib import Path

from gnntrack.config import load_config


def get_config():
    c = load_config(Path(__file__).with_name("embedding.py"))
    c.filter.path = "filter.npz"
    # ~1.0 M edges per mu = 200 event: what a GNN training step fits in 24 GB of host memory
    c.filter.threshold = 0.1
    c.filter.hidden = 64
    c.filter.n_layers = 2
    c.filter.steps = 3000
    return c
