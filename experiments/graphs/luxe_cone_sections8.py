"""LUXE-like crossings as 8 exact sections along the bending slope, each with a 4-hop halo: for a
4-iteration segment classifier every core edge scores as in the whole crossing (loss on core
edges only; whole test crossings are rebuilt for evaluation)."""

from gnntrack.graphs.config import luxe_graph_config


def get_config():
    c = luxe_graph_config()
    c.exact_sections = 8
    c.section_hops = 4
    return c
