"""The README's particle-flow result: MLPF (LSH bins, hidden 128, Adam 3e-3 with warmup + cosine,
20,000 steps of one event) on 1,150 simulated mu = 50 events, validated on 40, then evaluated on
events simulated apart (another seed) against the rule-based baseline:

    gnntrack pflow simulate --out data/pflow-mu50 --events 1200 --pileup 50 --seed 2 --workers 2
    gnntrack pflow simulate --out data/pflow-mu50-test --events 1200 --pileup 50 --seed 5 --workers 2
    gnntrack train --config experiments/pflow/gnn_lsh_mu50.py --workdir runs/mlpf_mu50
    gnntrack evaluate --workdir runs/mlpf_mu50 --input data/pflow-mu50-test

About 46 minutes of training on a 2-core CPU.
"""

from gnntrack.configs.pflow import pflow_config


def get_config():
    config = pflow_config("lsh")
    config.data.input_dir = "data/pflow-mu50"
    config.data.n_train, config.data.n_val, config.data.n_test = 1150, 40, 10
    config.model.hidden = 128
    config.optimizer.lr = 3e-3
    config.optimizer.warmup_steps = 200
    config.train.steps = 20000
    config.train.eval_every = 4000
    config.train.checkpoint_every = 1000
    return config
