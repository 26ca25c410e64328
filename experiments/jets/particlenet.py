"""ParticleNet (the paper's sizes) teacher on the generated jets (`gnntrack.configs.jets`); on a CPU it
costs about 30x ParticleNet-Lite per step: train it where a GPU is lent, or on fewer jets.

    gnntrack train --config experiments/jets/particlenet.py --workdir runs/jets_particlenet
"""

from gnntrack.configs.jets import jets_config


def get_config():
    return jets_config("particlenet")
