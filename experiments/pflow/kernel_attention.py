"""MLPF with message 'kernel_attention' on the Pythia particle-flow events (`gnntrack.configs.pflow`).

    gnntrack train --config experiments/pflow/kernel_attention.py --workdir runs/pflow_kernel_attention
"""

from gnntrack.configs.pflow import pflow_config


def get_config():
    return pflow_config("kernel_attention")
