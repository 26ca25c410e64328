"""Particle-flow sweep: TPE over MLPF's optimiser, width, depth and LSH bin size, with ASHA pruning
on the validation loss. The loss itself (focal gamma, head weights) stays fixed: trials that
changed it would compare validation losses of different functions.

    gnntrack sweep --config experiments/sweeps/pflow.py --workdir runs/sweep_pflow
    gnntrack sweep --config experiments/sweeps/pflow.py --workdir runs/sweep_pflow --workers 2

Base run: `gnntrack.configs.pflow.pflow_config('lsh')` on particle-flow events simulated into the
data cache on first use (Pythia 8 ttbar at mu = data.pflow.pileup, 0 by default: a few seconds per
event; point data.input_dir at `gnntrack pflow simulate` output for mu = 50 or 200), 600 steps with
a validation every 100 (ASHA's rungs). Every trial uses the same seed and events, so trials
differ only by hyperparameters; trial 0 is the base config (sweep.baseline_trial). The base run
alone: `gnntrack train --config experiments/sweeps/pflow.py:base --workdir RUN`.
"""

from gnntrack.configs.pflow import pflow_config
from gnntrack.studies import search_space as ss
from gnntrack.studies.sweep import default_sweep_config, quiet_trial_training


def base_config():
    """The run every trial starts from (also the baseline the sweep is compared with)."""
    config = pflow_config("lsh")
    config.data.n_train, config.data.n_val, config.data.n_test = 48, 8, 0
    quiet_trial_training(config.train, steps=600, eval_every=100)
    return config


def get_config(arg=None):
    if arg == "base":
        return base_config()
    config = base_config()
    config.sweep = default_sweep_config()
    config.sweep.space = (
        ss.log_uniform("optimizer.lr", 1e-4, 1e-2, grid=[3e-4, 1e-3, 3e-3]),
        ss.choice("optimizer.warmup_steps", [0, 50, 100]),
        ss.choice("model.hidden", [32, 64, 128]),
        ss.int_range("model.n_layers", 1, 3),
        ss.choice("model.bin_size", [64, 128, 256]),
        ss.choice("model.n_buckets", [8, 16, 32]),
    )
    config.sweep.metric = "val_loss"
    config.sweep.direction = "minimize"
    config.sweep.n_trials = 24
    config.sweep.sampler = "tpe"
    config.sweep.tpe_startup_trials = 6
    config.sweep.pruner = "asha"
    config.sweep.asha_reduction_factor = 3
    return config
