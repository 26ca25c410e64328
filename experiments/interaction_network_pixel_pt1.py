"""Interaction network on pixel-detector, pT > 1 GeV graphs (DeZoort et al. 2021).

Relational MLP on [x_s, x_r, e], object MLP on [x, sum of messages], edge classifier on the
updated features; hidden 40 (~6.4k parameters), one round; geometric edge features (dr, dphi,
dz, dR). Whole events (no sectioning), Adam with exponential decay.

    gnntrack train --config experiments/interaction_network_pixel_pt1.py --workdir runs/in_pixel_pt1
"""

from gnntrack.nn.models import default_model_config
from gnntrack.train.defaults import default_config


def get_config():
    config = default_config()
    config.seed = 0
    data = config.data
    data.source = "simulate"
    data.n_train, data.n_val, data.n_test = 256, 16, 32
    data.simulation.pileup = 200.0
    data.workers = 2
    graph = config.graph
    graph.selection = "pixel"
    graph.pt_min = 1.0
    graph.features.edge = ("dr", "dphi", "dz", "dR")
    config.model = default_model_config("interaction_network")
    opt = config.optimizer
    opt.name = "adam"
    opt.lr = 3.5e-3
    opt.schedule = "exponential"
    opt.decay_steps = 1000
    opt.decay_rate = 0.95
    config.batching.graphs_per_step = 4
    train = config.train
    train.steps = 20_000
    train.eval_every = 1000
    train.checkpoint_every = 1000
    train.log_every = 20
    config.eval.thresholds = (0.3, 0.5, 0.7)
    return config
