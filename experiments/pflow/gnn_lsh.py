"""MLPF with message 'lsh' on the Pythia particle-flow events (`gnntrack.configs.pflow`).

    gnntrack train --config experiments/pflow/gnn_lsh.py --workdir runs/pflow_gnn_lsh
"""

from gnntrack.configs.pflow import pflow_config


def get_config():
    return pflow_config("lsh")
