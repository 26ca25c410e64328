"""HEP.TrkX segment classifier on barrel, pT > 1 GeV graphs at full pileup (Farrell et al. 2018).

The published setting: barrel layers only, truth pT > 1 GeV, events split into 8 phi x 2 eta
sections, hidden 64, 8 iterations (~43k parameters), Adam. Anchor: edge efficiency / purity
0.987 / 0.987 at threshold 0.5 on TrackML.

    gnntrack train --config experiments/segment_classifier_barrel_pt1.py --workdir runs/sc_barrel_pt1
    # real TrackML events instead of the simulation:
    gnntrack train --config experiments/segment_classifier_barrel_pt1.py --workdir runs/sc_trackml \
        --config.data.source=events --config.data.input_dir=/data/trackml/train_1
"""

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
    graph.selection = "barrel"
    graph.pt_min = 1.0
    graph.n_phi_sections = 8
    graph.n_eta_sections = 2
    model = config.model  # segment_classifier defaults: hidden 64, 8 iterations
    model.impl = "fast"
    opt = config.optimizer
    opt.name = "adam"
    opt.lr = 1e-3
    opt.schedule = "warmup_cosine"
    opt.warmup_steps = 200
    opt.end_lr_factor = 0.01
    config.batching.graphs_per_step = 8
    train = config.train
    train.steps = 20_000
    train.eval_every = 1000
    train.checkpoint_every = 1000
    train.log_every = 20
    config.eval.thresholds = (0.3, 0.5, 0.7, 0.9)
    return config
