"""LUXE-like crossings, segment classifier trained on 8 exact sections with a 4-hop halo (scores equal the whole crossing's)."""

from gnntrack.configs.luxe import luxe_config


def get_config():
    return luxe_config("sections")
