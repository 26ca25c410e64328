"""Device study: throughput vs devices (1, 2, 4, 8), weak and strong scaling, straggler
ratio for like-sized vs random batching, step-time breakdown.

    gnntrack scale --config experiments/scaling/devices.py --workdir runs/scaling/devices

On a CPU host every device count runs in a subprocess with N forced host devices that SHARE the
host's cores (efficiency well below 1 is expected there); with study.platform='auto' real
accelerators are used when present.
"""

from gnntrack.nn.models import default_model_config
from gnntrack.studies.devices import default_device_study_config
from gnntrack.train.defaults import default_config


def get_config():
    config = default_config()
    config.data.n_train = 320
    config.data.n_val = 0
    config.data.n_test = 0
    config.graph.selection = "all"
    config.model = default_model_config("interaction_network")
    config.model.hidden = 32
    config.loss.weighting = "manual"
    config.batching.max_buckets = 4
    config.train.progress = False
    config.train.tensorboard = False
    config.eval.full_events = False
    config.study = default_device_study_config()
    config.study.toy.n_events = 320
    return config
