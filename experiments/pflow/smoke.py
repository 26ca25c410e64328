"""A seconds-long particle-flow run: toy events (experiments/pflow/toy_source.py), a tiny MLPF
with LSH bins, the pflow task, a few steps.

    gnntrack train --config experiments/pflow/smoke.py --workdir /tmp/pflow_smoke
"""

from pathlib import Path

from gnntrack.nn import default_model_config
from gnntrack.tasks import default_task_config
from gnntrack.train.defaults import default_config


def get_config():
    config = default_config()
    config.imports = (str(Path(__file__).with_name("toy_source.py")),)
    config.seed = 0
    config.data.source = "pflow_toy"
    config.data.n_train, config.data.n_val, config.data.n_test = 4, 2, 2
    config.task = default_task_config("pflow")
    config.model = default_model_config("mlpf")
    config.model.hidden, config.model.n_layers, config.model.n_convs = 16, 1, 1
    config.model.bin_size, config.model.n_buckets, config.model.distance_dim = 16, 4, 4
    config.optimizer.lr = 3e-3
    config.batching.graphs_per_step = 2
    config.batching.max_buckets = 1
    config.parallel.n_devices = 1
    config.train.steps = 6
    config.train.log_every = 1
    config.train.eval_every = 3
    config.train.checkpoint_every = 0
    config.train.best_metric, config.train.best_mode = "val_loss", "min"
    config.train.progress = False
    return config
