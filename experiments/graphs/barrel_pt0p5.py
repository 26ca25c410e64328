"""HEP.TrkX barrel graphs (10 barrel layers, 8 phi x 2 eta sections), pT >= 0.5 GeV."""

from gnntrack.graphs.config import barrel_config


def get_config():
    return barrel_config(0.5)
