"""ParticleNet-Lite teacher on the generated jets (`gnntrack.configs.jets`).

    gnntrack train --config experiments/jets/particlenet_lite.py --workdir runs/jets_particlenet_lite
"""

from gnntrack.configs.jets import jets_config


def get_config():
    return jets_config("particlenet_lite")
