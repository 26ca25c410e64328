"""LUXE-like crossings, segment classifier trained on 8 sections without halo: GST-style segments with no history table (gnntrack.configs.luxe)."""

from gnntrack.configs.luxe import luxe_config


def get_config():
    return luxe_config("gst")
