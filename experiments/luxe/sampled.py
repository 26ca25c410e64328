"""LUXE-like crossings, segment classifier trained on 30 % of the particles (and noise), drawn anew each epoch."""

from gnntrack.configs.luxe import luxe_config


def get_config():
    return luxe_config("sampled")
