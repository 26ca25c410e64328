"""LUXE-like crossings, segment classifier trained on whole crossings."""

from gnntrack.configs.luxe import luxe_config


def get_config():
    return luxe_config("full")
