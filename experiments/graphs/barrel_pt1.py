"""HEP.TrkX barrel graphs (10 barrel layers, 8 phi x 2 eta sections), pT >= 1.0 GeV."""

from gnntrack.graphs.config import barrel_config


def get_config():
    return barrel_config(1.0)
