"""The quickstart experiment's config: what `gnntrack quickstart` and `experiments/quickstart.py` run."""

from __future__ import annotations

import ml_collections

from gnntrack.train.defaults import default_config


def quickstart_config() -> ml_collections.ConfigDict:
    """The quickstart experiment: barrel, pT > 1 GeV graphs of small simulated events.

    Low pileup (mu = 10) keeps simulation, graph building and each step cheap on a laptop CPU;
    the segment classifier (hidden 64, 6 iterations, `impl="fast"`, with the geometric edge
    features) trains for 1500 steps of 4 events each and is scored at threshold 0.5 on held-out
    events (the README lists what it reaches). Up to 8 bucket shapes are compiled.
    """
    config = default_config()
    config.seed = 0
    data = config.data
    data.source = "simulate"
    data.n_train, data.n_val, data.n_test = 128, 8, 32
    data.seed = 1
    data.simulation.pileup = 10.0
    graph = config.graph
    graph.selection = "barrel"
    graph.pt_min = 1.0
    model = config.model
    model.hidden = 64
    model.n_iters = 6
    model.impl = "fast"
    model.use_edge_features = True
    opt = config.optimizer
    opt.name = "adam"
    opt.lr = 3e-3
    opt.schedule = "warmup_cosine"
    opt.warmup_steps = 50
    config.loss.weighting = "manual"
    config.batching.graphs_per_step = 4
    config.batching.max_buckets = 8
    train = config.train
    train.steps = 1500
    train.log_every = 10
    train.eval_every = 250
    train.checkpoint_every = 500
    config.eval.thresholds = (0.3, 0.5, 0.7, 0.9)
    return config
