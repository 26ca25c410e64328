"""Whole-event tracking, stage 3: the GNN (interaction network, 3 rounds, hidden 64) that scores
the edges of the metric-learning + filter graphs (experiments/whole_event/filter.py: every hit of
the whole detector, noise included, no truth cuts), sized for a 2-core CPU: trained on simulated
mu = 30 events, one event per step; evaluated end to end on mu = 200 events by
`gnntrack reconstruct`.

    python scripts/whole_event_table.py stages --out RUN       # RUN/embedding.npz, RUN/filter.npz
    gnntrack train --config experiments/whole_event/gnn.py --workdir RUN \\
        --config.graph.metric.embedding=$PWD/RUN/embedding.npz --config.graph.filter.path=$PWD/RUN/filter.npz
    gnntrack simulate --out EVENTS --events 2 --pileup 200 --seed 12345
    gnntrack reconstruct --run RUN --input EVENTS --out RUN/reconstruct
"""

from pathlib import Path

from gnntrack.config import load_config
from gnntrack.configs.quickstart import quickstart_config
from gnntrack.nn.models import default_model_config


def get_config():
    config = quickstart_config()  # optimizer, loss and cadence as the quickstart
    data = config.data
    data.n_train, data.n_val, data.n_test = 24, 2, 2
    data.seed = 7
    data.simulation.pileup = 30.0
    data.simulation.cells = True  # the graph stages read each hit's cluster
    config.graph = load_config(Path(__file__).with_name("filter.py"))
    config.model = default_model_config("interaction_network")
    config.model.update(hidden=64, n_iters=3, layer_norm=True)
    config.batching.graphs_per_step = 1
    config.batching.max_buckets = 4
    config.train.update(steps=1200, log_every=20, eval_every=400, checkpoint_every=400)
    config.eval.thresholds = (0.3, 0.5, 0.7)
    return config
