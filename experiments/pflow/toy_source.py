"""A toy particle-flow data source, 'pflow_toy' (`gnntrack.testing.pflow_events`: not physics).

Seconds to make, in the element and target layouts of the real 'pflow' source, so the pflow
task and the MLPF models can be run end to end in tests and smoke runs. A config lists this file
in `imports` (see smoke.py).
"""

import ml_collections

from gnntrack.testing import pflow_events
from gnntrack.train.data import DataSplits, n_events_needed
from gnntrack.train.sources import register_data_source, source_settings


def pflow_toy_config():
    """Keys of `data.pflow_toy`: particles per event (uniform between the two) and the seed."""
    return ml_collections.ConfigDict(dict(min_particles=10, max_particles=40, seed=0))


@register_data_source("pflow_toy", default_config=pflow_toy_config)
def prepare_pflow_toy(config, workdir, *, progress=True):
    del workdir, progress
    keys, data = source_settings(config), config.data
    events = pflow_events(n_events_needed(data), seed=int(keys.seed), min_particles=int(keys.min_particles),
                          max_particles=int(keys.max_particles))
    n_train, n_val = int(data.n_train), int(data.n_val)
    return DataSplits(train=events[:n_train], val=events[n_train:n_train + n_val],
                      test=events[n_train + n_val:], test_full=None,
                      info={"source": "pflow_toy", **keys.to_dict()})
