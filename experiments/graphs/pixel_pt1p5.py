"""Full-pixel graphs (barrel + endcaps), pT >= 1.5 GeV, interaction-network paper setting."""

from gnntrack.graphs.config import pixel_config


def get_config():
    return pixel_config(1.5)
