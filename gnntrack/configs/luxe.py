"""The LUXE-like training comparison: one segment classifier trained four ways on cone graphs of
crossings small enough for whole-graph training, always validated on whole graphs.

    experiments/luxe/full.py       luxe_config("full")      whole crossings, one per step
    experiments/luxe/sections.py   luxe_config("sections")  8 exact sections, 4-hop halo
    experiments/luxe/sampled.py    luxe_config("sampled")   30 % of the particles, new each epoch
    experiments/luxe/gst.py        luxe_config("gst")       8 sections without halo (see below)

The crossings come from `gnntrack simulate --detector luxe --particles 10000 --events 14 --seed 7
--out data/luxe10k` (6 train, 2 validation, 6 test crossings; data.input_dir). 'gst' is the
simplest segment training in the spirit of GST (arXiv:2305.12322): each step trains on one exact
section alone, its messages confined to it (no halo), with NEITHER the paper's table of historical
embeddings for the rest of the graph nor stale-embedding dropout; its test numbers come from whole
crossings (eval.full_events).
"""

from __future__ import annotations

import ml_collections

from gnntrack.errors import ConfigError
from gnntrack.graphs.config import luxe_graph_config
from gnntrack.train.defaults import default_config

VARIANTS = ("full", "sections", "sampled", "gst")
SECTIONS = 8
SAMPLE_FRACTION = 0.3


def luxe_config(variant: str = "full") -> ml_collections.ConfigDict:
    """Segment classifier (4 iterations, hidden 32: the study's 128 takes ~18 s per step of a
    10k-positron crossing on a shared 2-core CPU), Adam 1e-3, one graph per step, 'auto' class
    weights (from the sampled graphs when sampling). Run length in epochs, so each variant sees
    every training crossing equally often; validation on whole crossings at the end."""
    if variant not in VARIANTS:
        raise ConfigError(f"luxe_config(variant=...) must be one of {', '.join(VARIANTS)}, got {variant!r}")
    config = default_config()
    config.seed = 0
    config.data.source = "events"
    config.data.input_dir = "data/luxe10k"
    config.data.n_train, config.data.n_val, config.data.n_test = 6, 2, 6
    config.graph = luxe_graph_config()
    if variant in ("sections", "gst"):
        config.graph.exact_sections = SECTIONS
        config.graph.section_hops = 4 if variant == "sections" else 0
    if variant == "sampled":
        config.data.particle_fraction = SAMPLE_FRACTION
    config.model.hidden, config.model.n_iters = 32, 4
    config.optimizer.name, config.optimizer.lr = "adam", 1e-3
    config.loss.weighting = "auto"
    config.batching.graphs_per_step = 1
    config.batching.max_buckets = 4
    train = config.train
    train.steps, train.epochs = 0, 20
    train.log_every = 6
    train.eval_every = 0  # validation at the end (whole crossings)
    train.checkpoint_every = 0
    config.eval.thresholds = (0.3, 0.5, 0.7)
    return config
