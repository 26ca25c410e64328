"""LUXE-like crossings, segment classifier trained on 8 exact sections with a 4-hop halo, one
optimizer update per section (each normalised by its own core edges)."""

from gnntrack.configs.luxe import luxe_config


def get_config():
    return luxe_config("section_steps")
