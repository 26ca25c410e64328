"""Full-pixel graphs (barrel + endcaps), no pT cut, every hit (noise included), interaction-network paper setting."""

from gnntrack.graphs.config import pixel_config


def get_config():
    return pixel_config(0.0)
