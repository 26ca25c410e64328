"""The jet-tagging experiments' config: a tagger on data.source = 'jets', task 'jet'.

    experiments/jets/particlenet_lite.py   jets_config("particlenet_lite")   the CPU teacher
    experiments/jets/particlenet.py        jets_config("particlenet")        the paper's teacher
    experiments/jets/student_fc.py         jets_config("jet_fc")             [80 x 4] inputs
    experiments/jets/student_pfn.py        jets_config("jet_pfn")
    experiments/jets/student_kd.py         a student distilled from a teacher's run directory

The jet files default to $GNNTRACK_JETS (paths separated by ':'), else the generated sample of
`gnntrack jets generate` under runs/jets/; override with --config.data.jets.paths='(...)'.
"""

from __future__ import annotations

import os

import ml_collections

from gnntrack.jets.graphs import jets_source_config
from gnntrack.nn.registry import default_model_config
from gnntrack.tasks import default_task_config
from gnntrack.train.defaults import default_config

DEFAULT_PATHS = ("runs/jets/top_towers_seed1.h5", "runs/jets/qcd_towers_seed1.h5")

# (x - shift) * scale of the 7 ParticleNet features (d eta, d phi, log pT, log E, log pT/pT_jet,
# log E/E_jet, dR): about zero mean and unit spread on generated towers jets (top and QCD), the
# role of the input BatchNorm in the paper's network; d eta and d phi share one scale, so the
# first block's kNN in (d eta, d phi) is unchanged
PARTICLENET_INPUT_SHIFT = (0.0, 0.0, 1.7, 2.1, -4.65, -4.65, 0.27)
PARTICLENET_INPUT_SCALE = (4.0, 4.0, 0.75, 0.75, 0.75, 0.75, 5.0)


def default_jet_paths() -> tuple[str, ...]:
    """$GNNTRACK_JETS split at ':' when set, else DEFAULT_PATHS."""
    env = os.environ.get("GNNTRACK_JETS", "")
    return tuple(p for p in env.split(":") if p) or DEFAULT_PATHS


def jets_config(model: str = "particlenet_lite") -> ml_collections.ConfigDict:
    """`model` on the jets of `default_jet_paths()`: 128 jets per step, Adam 1e-3 with warmup
    and cosine decay, validation AUC picks the checkpoint; the model's inputs standardised."""
    config = default_config()
    config.seed = 0
    config.data.source = "jets"
    config.data.jets = jets_source_config()
    config.data.jets.paths = default_jet_paths()
    config.task = default_task_config("jet")
    config.model = default_model_config(model)
    if "input_shift" in config.model:  # every jet model (students take the leading features)
        config.model.input_shift, config.model.input_scale = PARTICLENET_INPUT_SHIFT, PARTICLENET_INPUT_SCALE
    opt = config.optimizer
    opt.name, opt.lr = "adam", 1e-3
    opt.schedule, opt.warmup_steps = "warmup_cosine", 100
    batching = config.batching
    batching.graphs_per_step = 128
    batching.max_buckets = 2  # jets differ little in size: few compiled shapes
    config.parallel.n_devices = 1
    train = config.train
    train.steps = 2000
    train.log_every = 50
    train.eval_every = 250
    train.checkpoint_every = 250
    train.best_metric, train.best_mode = "val_auc", "max"
    return config


def student_kd_config(teacher_dir: str, model: str = "jet_fc", fraction: float = 0.1
                      ) -> ml_collections.ConfigDict:
    """Student `model` on `fraction` of the training jets, distilled from the run in
    `teacher_dir` (its logits on these jets, computed once and cached): T = 2, λ = 0.5."""
    config = jets_config(model)
    config.data.jets.teacher_dir = teacher_dir
    config.data.jets.fraction = fraction
    config.task.T, config.task["lambda"] = 2.0, 0.5
    return config
