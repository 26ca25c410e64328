"""The full experiment config: `default_config()` and its validation.

An experiment file starts from `default_config()` and changes what it needs:

    def get_config():
        config = default_config()
        config.graph.selection = "barrel"
        config.train.steps = 2000
        return config

Groups (each owned by the module that consumes it):
  seed: model initialisation and data order (one integer drives both).
  imports: modules or .py files (relative to the experiment file) to import before anything is
    built, e.g. a file registering a model: `gnntrack.config.import_plugins`.
  data: where graphs come from (see below).
  graph: `gnntrack.graphs.config.default_graph_config()`.
  model: `gnntrack.nn.registry.default_model_config(name)` (keys depend on `model.name`;
    setting `model.name` swaps the group, see `gnntrack.config.swap_named_group`).
  task: `gnntrack.tasks.default_task_config(name)`: 'edge' (tracking edges, the default),
    'node' (e.g. noise hit vs track hit) or 'graph'; a node or graph task needs a model with a
    node / graph head (`model.name = "graph_net"`), whose width the task sets.
  optimizer, loss, batching, parallel: the training core's `default_*_config()`.
  train: run length, logging, evaluation and checkpoint cadence.
  eval: thresholds and full-event evaluation.

data keys:
  source: 'simulate' (events from gnntrack.detector.simulate, cached), 'events' (TrackML event
    directory), 'graphs' (a directory of graph files written by `gnntrack build-graphs`),
    'sign_graphs' (`gnntrack.testing.sign_graphs`: small synthetic graphs for the graph task), or
    a registered source (`gnntrack.train.sources`) whose own keys form the group `data.<source>`.
  input_dir: the events/graphs directory for 'events'/'graphs' (split by event id, sorted).
  n_train, n_val, n_test: events per split (for 'events'/'graphs': taken in event-id order;
    n_test = -1 takes every remaining event).
  seed: simulation seed (events are a deterministic function of it and `simulation`).
  simulation: `gnntrack.detector.simulate.default_simulation_config()` ('simulate' only).
  cache_dir: where simulated events and built graphs are cached ('' = `<workdir>/data`);
    entries are keyed by a hash of everything that determines them and reused when present.
  workers: processes for graph building.
  particle_fraction: 0 = train on whole graphs; f in (0, 1] = particle sampling
    (gnntrack.graphs.sampling): each epoch every training graph is thinned to a new random
    fraction f of its particles, all hits of each, and f of its noise hits, drawn from
    (seed, epoch), so a resumed run sees the same samples. Validation and test use whole graphs.
"""

from __future__ import annotations

import ml_collections

from gnntrack.config import import_plugins
from gnntrack.errors import ConfigError
from gnntrack.keys import check_known_keys
from gnntrack.train.sources import TRACKING_SOURCES, registered_source, source_group_defaults

# Keys that may change between an interrupted run and its resumption (they do not change the
# numbers of the steps already taken).
RESUME_MUTABLE_KEYS = (
    "train.steps", "train.epochs", "train.log_every", "train.eval_every", "train.checkpoint_every",
    "train.keep_checkpoints", "train.progress", "train.tensorboard", "train.noise_scale_decay",
    "train.profile_steps", "batching.precompile",
    "data.workers", "data.cache_dir",
    "eval.thresholds", "eval.full_events", "eval.max_graphs",
)


def default_data_config() -> ml_collections.ConfigDict:
    from gnntrack.detector.simulate import default_simulation_config

    return ml_collections.ConfigDict(dict(
        source="simulate", input_dir="", n_train=16, n_val=4, n_test=4, seed=1,
        simulation=default_simulation_config(), cache_dir="", workers=1, particle_fraction=0.0))


def default_train_config() -> ml_collections.ConfigDict:
    """Run length and cadence (all in optimizer steps)."""
    return ml_collections.ConfigDict(dict(
        steps=1000,          # total optimizer steps; 0 -> use `epochs`
        epochs=0,            # passes over the training graphs (used when steps == 0)
        log_every=10,        # metrics.jsonl / TensorBoard train record cadence
        eval_every=200,      # validation cadence (0 = only at the end)
        checkpoint_every=200,  # checkpoint cadence (0 = only at evaluations and the end)
        keep_checkpoints=3,  # most recent checkpoints kept (plus the best one)
        best_metric="val_f1",  # metrics.jsonl validation key ranking the best checkpoint
        best_mode="max",
        progress=True,       # tqdm progress bar on stderr
        tensorboard=True,
        noise_scale_decay=0.95,  # EMA decay of the logged gradient noise scale B_simple (>= 2 devices)
        target_metric="",    # stop once this validation metric reaches target_value ('' = never);
        target_value=0.0,    # 'reaches' follows best_mode (max: >=, min: <=)
        profile_steps=(),    # (first, last): a jax.profiler trace of those steps in <workdir>/profile
    ))


def default_eval_config() -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(dict(
        thresholds=(0.5,),   # edge-score thresholds reported besides 0.5
        full_events=True,    # at the end, also evaluate the test events as whole (unsectioned) graphs
        max_graphs=0,        # cap on validation graphs per evaluation (0 = all)
    ))


def default_config() -> ml_collections.ConfigDict:
    """Every key an experiment may set, with its default value."""
    from gnntrack.graphs.batching import default_batching_config
    from gnntrack.graphs.config import default_graph_config
    from gnntrack.nn.registry import default_model_config
    from gnntrack.train.losses import default_loss_config
    from gnntrack.train.optim import default_optimizer_config
    from gnntrack.train.parallel import default_parallel_config
    from gnntrack.tasks import default_task_config

    config = ml_collections.ConfigDict()
    config.seed = 0
    config.imports = ()
    config.data = default_data_config()
    config.graph = default_graph_config()
    config.task = default_task_config("edge")
    config.model = default_model_config("segment_classifier")
    config.optimizer = default_optimizer_config()
    config.loss = default_loss_config()
    config.batching = default_batching_config()
    config.parallel = default_parallel_config()
    config.train = default_train_config()
    config.eval = default_eval_config()
    return config


def reference_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The defaults matching `config`'s choices (e.g. the model defaults of its `model.name`)."""
    from gnntrack.nn.registry import default_model_config
    from gnntrack.tasks import default_task_config

    reference = default_config()
    reference.model = default_model_config(config.get("model", {}).get("name", "segment_classifier"))
    reference.task = default_task_config(config.get("task", {}).get("name", "edge"))
    source = config.get("data", {}).get("source", "simulate")
    group = source_group_defaults(source)
    if group is not None:
        reference.data[source] = group
    return reference


def validate_config(config: ml_collections.ConfigDict) -> None:
    """Raises ConfigError for unknown keys (any depth) or invalid run settings.

    Imports `config.imports` first: models and messages registered there must be known.
    """
    import_plugins(config)
    check_known_keys(config, reference_config(config))
    data, train = config.data, config.train
    registered_source(data.source)  # ConfigError for an unknown source
    if data.source in TRACKING_SOURCES and data.source not in ("simulate", "sign_graphs") and not data.input_dir:
        raise ConfigError(f"config key 'data.input_dir' must name a directory when data.source is "
                          f"{data.source!r}")
    if data.n_train < 1:
        raise ConfigError(f"config key 'data.n_train' must be >= 1, got {data.n_train}")
    if data.n_val < 0:
        raise ConfigError(f"config key 'data.n_val' must be >= 0, got {data.n_val}")
    if not 0.0 <= float(data.particle_fraction) <= 1.0:
        raise ConfigError(f"config key 'data.particle_fraction' must lie in [0, 1] (0 = whole graphs), "
                          f"got {data.particle_fraction}")
    if float(data.particle_fraction) and (data.source not in TRACKING_SOURCES or data.source == "sign_graphs"):
        raise ConfigError(f"config key 'data.particle_fraction' samples the particles of tracking events; "
                          f"data.source {data.source!r} has none (set it to 0)")
    if train.steps < 0 or train.epochs < 0 or (train.steps == 0 and train.epochs == 0):
        raise ConfigError("set config key 'train.steps' (> 0) or 'train.epochs' (> 0)")
    for key in ("log_every", "eval_every", "checkpoint_every"):
        if train[key] < 0:
            raise ConfigError(f"config key 'train.{key}' must be >= 0, got {train[key]}")
    if train.log_every == 0:
        raise ConfigError("config key 'train.log_every' must be >= 1")
    if train.keep_checkpoints < 1:
        raise ConfigError(f"config key 'train.keep_checkpoints' must be >= 1, got {train.keep_checkpoints}")
    if not 0.0 <= float(train.noise_scale_decay) < 1.0:
        raise ConfigError(f"config key 'train.noise_scale_decay' must lie in [0, 1), got {train.noise_scale_decay}")
    if train.best_mode not in ("max", "min"):
        raise ConfigError(f"config key 'train.best_mode' must be 'max' or 'min', got {train.best_mode!r}")
    if train.target_metric and not train.target_metric.startswith("val_"):
        raise ConfigError(f"config key 'train.target_metric' must be a validation key like 'val_f1', "
                          f"got {train.target_metric!r}")
    if tuple(train.profile_steps) and (len(train.profile_steps) != 2 or not 1 <= train.profile_steps[0]
                                       <= train.profile_steps[1]):
        raise ConfigError(f"config key 'train.profile_steps' must be () or (first, last) with "
                          f"1 <= first <= last, got {tuple(train.profile_steps)}")
    if train.best_metric and not train.best_metric.startswith("val_"):
        raise ConfigError(f"config key 'train.best_metric' must be a validation key like 'val_f1', "
                          f"got {train.best_metric!r}")
    per_step = config.batching.graphs_per_step
    if int(per_step) < 1:
        raise ConfigError(f"config key 'batching.graphs_per_step' must be >= 1, got {per_step}")
    from gnntrack.train.optim import validate_optimizer_config

    validate_optimizer_config(config.optimizer)
    for t in config.eval.thresholds:
        if not 0.0 <= float(t) <= 1.0:
            raise ConfigError(f"config key 'eval.thresholds' must hold values in [0, 1], got {t!r}")
    _validate_task(config)
    from gnntrack.graphs.config import validate_graph_config

    validate_graph_config(config.graph)
    if data.source == "simulate":
        from gnntrack.detector.simulate import validate_simulation_config

        validate_simulation_config(data.simulation, where="data.simulation")


def _validate_task(config: ml_collections.ConfigDict) -> None:
    """The task group is valid and the model can give its outputs (a head of its level)."""
    from gnntrack.tasks import make_task

    task = make_task(config.get("task", ml_collections.ConfigDict(dict(name="edge"))))
    if task.level != "edge" and not {"level", "outputs"} <= set(config.model.keys()):
        raise ConfigError(f"task {task.level!r} needs a model with a {task.level} head (model keys "
                          f"'level' and 'outputs'), e.g. --config.model.name=graph_net; "
                          f"model {config.model.name!r} gives one output per edge")
    if task.level == "edge" and "level" in config.model and config.model.level != "edge":
        raise ConfigError(f"model {config.model.name!r} gives {config.model.level} outputs; the edge "
                          f"task needs one logit per edge (set task.name to '{config.model.level}')")
