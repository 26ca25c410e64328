"""The LUXE-like training comparison: one segment classifier trained six ways on cone graphs of
crossings small enough for whole-graph training, always validated on whole graphs.

    experiments/luxe/full.py           luxe_config("full")           whole crossings, one per step
    experiments/luxe/sections.py       luxe_config("sections")       8 exact sections, 4-hop halo,
                                                                     one update per crossing
    experiments/luxe/section_steps.py  luxe_config("section_steps")  the same sections, one update
                                                                     per section
    experiments/luxe/sampled.py        luxe_config("sampled")        30 % of the particles, new each epoch
    experiments/luxe/gst.py            luxe_config("gst")            8 segments, history table and
                                                                     stale-embedding dropout
    experiments/luxe/segments.py       luxe_config("segments")       8 sections without halo or table

'sections' is full-graph training in pieces: a step holds one section (a section's memory, not
the crossing's), the crossing's 8 sections are consecutive steps (batching.whole_events) whose
gradients optax.MultiSteps averages into one update (optimizer.accumulation_steps = 8), and each
step's loss is divided by the crossing's core-edge count / 8 (batching.loss_normaliser='update'),
so every update is the whole crossing's (the core edges partition its edges, and each core edge
scores as in the whole graph) and the run follows 'full' to float rounding. 'section_steps'
updates after every section, each normalised by its own core edges: 8x more, noisier updates.

The crossings come from `gnntrack simulate --detector luxe --particles 10000 --events 14 --seed 7
--out data/luxe10k` (6 train, 2 validation, 6 test crossings; data.input_dir). 'gst' is segment
training after GST (arXiv:2305.12322, `gnntrack.train.history`): the crossing's hits are dealt
at random into 8 segments (graph.section_by='random': segments cut tracks, unlike the slope
slices), each step trains one segment with a one-hop halo whose ring nodes take their states of
every iteration from a table of the whole crossings' node states (refreshed every epoch), with
stale-embedding dropout GST_DROPOUT. 'segments' is the same random segments without table or
halo: each step's messages stay inside its segment. Test numbers always come from whole crossings (eval.full_events).
"""

from __future__ import annotations

import ml_collections

from gnntrack.errors import ConfigError
from gnntrack.graphs.config import luxe_graph_config
from gnntrack.train.defaults import default_config

VARIANTS = ("full", "sections", "section_steps", "sampled", "gst", "segments")
SECTIONS = 8
GST_DROPOUT = 0.2
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
    if variant in ("sections", "section_steps", "gst", "segments"):
        config.graph.exact_sections = SECTIONS
        config.graph.section_hops = {"gst": 1, "segments": 0}.get(variant, 4)
    if variant == "sections":
        config.batching.whole_events = True
        config.batching.loss_normaliser = "update"
        config.optimizer.accumulation_steps = SECTIONS
    if variant in ("gst", "segments"):
        config.graph.section_by = "random"  # GST's random segments: they cut tracks
    if variant == "gst":
        config.model.impl = "reference"  # the history table is built on the reference form
        config.model.history, config.model.history_dropout = True, GST_DROPOUT
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
