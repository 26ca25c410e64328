"""Fully connected student on [80 x 4] inputs (d eta, d phi, log pT, log E), no teacher.

    gnntrack train --config experiments/jets/student_fc.py --workdir runs/jets_student_fc
    --config.data.jets.fraction=0.1     the 10 % data point of the data-fraction study
"""

from gnntrack.configs.jets import jets_config


def get_config():
    return jets_config("jet_fc")
