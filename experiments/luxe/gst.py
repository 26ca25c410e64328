"""LUXE-like crossings, segment classifier trained GST-style: 8 one-hop segments whose halo ring
reads its node states from a history table of the whole crossings, with stale-embedding dropout."""

from gnntrack.configs.luxe import luxe_config


def get_config():
    return luxe_config("gst")
