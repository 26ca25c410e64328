"""A seconds-long smoke run: tiny simulated events, a tiny segment classifier, a few steps.

    gnntrack train --config experiments/smoke.py --workdir /tmp/smoke

Used by the tests (resume, NaN stop, run-directory contents) and handy to check an install.
"""

from gnntrack.train.defaults import default_config


def get_config():
    config = default_config()
    config.seed = 0
    config.data.n_train, config.data.n_val, config.data.n_test = 4, 1, 1
    config.data.simulation.pileup = 5.0
    config.graph.selection = "barrel"
    config.graph.pt_min = 1.0
    config.model.hidden = 8
    config.model.n_iters = 1
    config.optimizer.lr = 3e-3
    config.batching.graphs_per_step = 2
    config.batching.max_buckets = 1  # one compiled shape per step function
    config.parallel.n_devices = 1
    config.train.steps = 6
    config.train.log_every = 1
    config.train.eval_every = 3
    config.train.checkpoint_every = 2
    config.train.keep_checkpoints = 2
    config.train.progress = False
    config.eval.thresholds = (0.3, 0.5, 0.7)
    return config
