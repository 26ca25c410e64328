"""LUXE-like crossings, segment classifier trained on 8 exact sections with a 4-hop halo, one
optimizer update per crossing from its 8 sections: the whole crossing's update, a section's memory."""

from gnntrack.configs.luxe import luxe_config


def get_config():
    return luxe_config("sections")
