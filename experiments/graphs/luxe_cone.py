"""LUXE-like crossings (`gnntrack simulate --detector luxe`): cone-window graphs of every hit,
noise included, consecutive layers and stave overlaps (gnntrack.graphs.cone)."""

from gnntrack.graphs.config import luxe_graph_config


def get_config():
    return luxe_graph_config()
