"""MLPF with message 'dense' on the Pythia particle-flow events (`gnntrack.configs.pflow`).

    gnntrack train --config experiments/pflow/dense.py --workdir runs/pflow_dense
"""

from gnntrack.configs.pflow import pflow_config


def get_config():
    return pflow_config("dense")
