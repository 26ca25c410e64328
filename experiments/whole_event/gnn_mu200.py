"""Whole-event tracking, stage 3 trained where it is used: the GNN of experiments/whole_event/gnn.py
(interaction network, 3 rounds, hidden 64, on the metric-learning + filter graphs of every hit)
trained on simulated mu = 200 events instead of mu = 30. A mu = 200 graph after the filter holds
~1.1 M edges of which ~5 % are true, against ~25 % at mu = 30: a model trained at mu = 30 meets
a different mixture of true and fake edges than it learned. One event per step.

    gnntrack train --config experiments/whole_event/gnn_mu200.py --workdir RUN \\
        --config.graph.metric.embedding=$PWD/STAGES/embedding.npz --config.graph.filter.path=$PWD/STAGES/filter.npz
    gnntrack reconstruct --run RUN --input EVENTS --out RUN/reconstruct
"""

from pathlib import Path

from gnntrack.config import load_config


def get_config():
    config = load_config(Path(__file__).with_name("gnn.py"))
    data = config.data
    data.n_train, data.n_val, data.n_test = 10, 1, 1
    data.simulation.pileup = 200.0
    config.train.update(steps=900, log_every=10, eval_every=300, checkpoint_every=100)
    return config
