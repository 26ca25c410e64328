"""Whole-event tracking, stage 3 on wider graphs: experiments/whole_event/gnn_mu200.py with a wider
metric-learning neighbourhood and a stricter filter (the same embedding and filter files). On the
two held-out mu = 200 events these graphs keep 0.87 of all-pT segments (0.79 with gnn_mu200.py's)
at ~1.1 M edges per event, so a perfect edge classifier would score 0.80 instead of 0.70; the
construction costs ~2.2x the CPU time.

    gnntrack train --config experiments/whole_event/gnn_mu200_wide.py --workdir RUN \\
        --config.graph.metric.embedding=$PWD/STAGES/embedding.npz --config.graph.filter.path=$PWD/STAGES/filter.npz
    gnntrack reconstruct --run RUN --input EVENTS --out RUN/reconstruct --tune-on OTHER_EVENTS
"""

from pathlib import Path

from gnntrack.config import load_config


def get_config():
    config = load_config(Path(__file__).with_name("gnn_mu200.py"))
    config.graph.metric.update(radius=0.35, k_max=256)
    config.graph.filter.threshold = 0.2
    return config
