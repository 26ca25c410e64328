"""LUXE-like crossings, segment classifier trained on 8 sections without halo or history table
(each step's messages stay inside its section)."""

from gnntrack.configs.luxe import luxe_config


def get_config():
    return luxe_config("segments")
