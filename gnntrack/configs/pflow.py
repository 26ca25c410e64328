"""The particle-flow experiments' config: MLPF on the Pythia events of data.source = 'pflow'.

    experiments/pflow/gnn_lsh.py            pflow_config()                      LSH bins
    experiments/pflow/dense.py              pflow_config(message="dense")       the quadratic reference
    experiments/pflow/kernel_attention.py   pflow_config(message="kernel_attention")
    --config.model.dtype=bfloat16           mixed precision (fp32 parameters)
"""

from __future__ import annotations

import ml_collections

from gnntrack.errors import ConfigError
from gnntrack.nn.registry import default_model_config
from gnntrack.tasks import default_task_config
from gnntrack.train.defaults import default_config

MESSAGES = ("lsh", "dense", "kernel_attention")


def pflow_config(message: str = "lsh") -> ml_collections.ConfigDict:
    """MLPF (hidden 64, 2 message layers, bins of 128 elements in 16 buckets) on the pflow task.

    One event per step (events hold thousands of elements), Adam with warmup + cosine decay;
    checkpoints ranked by the validation loss. `message`: 'lsh', 'dense' (LSH model with one bin
    per event: O(N²)) or 'kernel_attention'.
    """
    if message not in MESSAGES:
        raise ConfigError(f"pflow_config(message=...) must be one of {', '.join(MESSAGES)}, got {message!r}")
    config = default_config()
    config.seed = 0
    config.data.source = "pflow"
    config.data.n_train, config.data.n_val, config.data.n_test = 64, 8, 16
    config.task = default_task_config("pflow")
    model = config.model = default_model_config("mlpf")
    model.hidden, model.n_layers = 64, 2
    model.message = "kernel_attention" if message == "kernel_attention" else "lsh"
    model.dense = message == "dense"
    opt = config.optimizer
    opt.name, opt.lr = "adam", 1e-3
    opt.schedule, opt.warmup_steps = "warmup_cosine", 50
    config.batching.graphs_per_step = 1
    config.batching.max_buckets = 4
    train = config.train
    train.steps = 1000
    train.log_every = 10
    train.eval_every = 200
    train.checkpoint_every = 200
    train.best_metric, train.best_mode = "val_loss", "min"
    return config
