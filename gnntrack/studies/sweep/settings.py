"""Sweep settings: the `sweep` section of an experiment file, validated, and the result type."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any, Callable, Mapping, Sequence

import ml_collections

from gnntrack.errors import ConfigError, GnnTrackError
from gnntrack.keys import check_known_keys
from gnntrack.studies.search_space import ParamSpec, parse_search_space

SAMPLERS = ("grid", "random", "tpe")
PRUNERS = ("none", "median", "asha")
TRIAL_SEEDS = ("same", "per_trial")


TrainFn = Callable[..., Mapping[str, Any]]


class SweepError(GnnTrackError):
    """A sweep cannot continue (failing trials, a worker process died, incompatible study)."""


def default_sweep_config() -> ml_collections.ConfigDict:
    """The `sweep` section of a sweep experiment file (every key with its default).

    Keys:
      space: tuple of search-space entries (see gnntrack.studies.search_space).
      metric, direction: the validation metric optimised (a key of the dict returned by the
        training function and passed to report_fn) and 'maximize' | 'minimize'.
      n_trials: budget: COMPLETE + PRUNED trials the study should hold (grid: capped at the grid
        size; a seeded random subset of the grid when smaller).
      sampler: grid | random | tpe.  seed: sampler seed (trial k samples with a seed derived
        from (seed, k), so resumed and parallel studies do not repeat draws).
      tpe_startup_trials: random trials before TPE models the history.
      pruner: none | median | asha.  pruner_startup_trials, pruner_warmup_steps: median pruner.
        asha_min_resource ('auto' or steps), asha_reduction_factor: successive halving.
      trial_seed: same | per_trial (see module docstring).
      baseline_trial: random/tpe: queue the base config's own values of the searched keys as the
        study's first trial (when they lie in the space), so the summary compares the best trial
        with the unchanged config under identical conditions.
      storage: SQLAlchemy URL ('' = sqlite:///<workdir>/study.db).  study_name: study in storage.
      max_retries: re-queues of a trial whose process died (interrupted, killed, lost heartbeat).
      max_failures: trials failing with an exception before the sweep stops (0 = n_trials).
      heartbeat_seconds, grace_seconds: a RUNNING trial whose heartbeat is older than
        grace_seconds is considered dead (trials of dead local processes are detected at once).
      poll_seconds: how often an idle worker checks for work (waiting for other workers).
    """
    return ml_collections.ConfigDict(dict(
        space=(), metric="val_auc", direction="maximize", n_trials=12, sampler="tpe", seed=0,
        tpe_startup_trials=5, pruner="median", pruner_startup_trials=3, pruner_warmup_steps=0,
        asha_min_resource="auto", asha_reduction_factor=3, trial_seed="same", baseline_trial=True, storage="",
        study_name="sweep", max_retries=2, max_failures=0, heartbeat_seconds=10, grace_seconds=60,
        poll_seconds=2.0))


def quiet_trial_training(train: ml_collections.ConfigDict, steps: int, eval_every: int) -> None:
    """Sets a sweep base run's `train` group as every trial wants it: `steps` steps with a
    validation every `eval_every` (the pruners' intermediate values), one checkpoint at the end
    and only that one kept, no progress bar (many trials share a terminal), no TensorBoard."""
    train.steps, train.eval_every = int(steps), int(eval_every)
    train.checkpoint_every, train.keep_checkpoints = int(steps), 1
    train.progress = train.tensorboard = False


@dataclasses.dataclass(frozen=True)
class SweepSettings:
    """Validated sweep settings (the `sweep` section minus the search space)."""

    metric: str = "val_auc"
    direction: str = "maximize"
    n_trials: int = 12
    sampler: str = "tpe"
    seed: int = 0
    tpe_startup_trials: int = 5
    pruner: str = "median"
    pruner_startup_trials: int = 3
    pruner_warmup_steps: int = 0
    asha_min_resource: str | int = "auto"
    asha_reduction_factor: int = 3
    trial_seed: str = "same"
    baseline_trial: bool = True
    storage: str = ""
    study_name: str = "sweep"
    max_retries: int = 2
    max_failures: int = 0
    heartbeat_seconds: int = 10
    grace_seconds: int = 60
    poll_seconds: float = 2.0

    def __post_init__(self):
        _choose("sampler", self.sampler, SAMPLERS)
        _choose("pruner", self.pruner, PRUNERS)
        _choose("direction", self.direction, ("maximize", "minimize"))
        _choose("trial_seed", self.trial_seed, TRIAL_SEEDS)
        if not isinstance(self.metric, str) or not self.metric:
            raise ConfigError("config key 'sweep.metric' must name a validation metric such as 'val_auc'")
        for key in ("n_trials", "heartbeat_seconds", "grace_seconds", "asha_reduction_factor"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"config key 'sweep.{key}' must be a positive integer, got {value!r}")
        for key in ("tpe_startup_trials", "pruner_startup_trials", "pruner_warmup_steps", "max_retries",
                    "max_failures"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"config key 'sweep.{key}' must be an integer >= 0, got {value!r}")
        if self.asha_min_resource != "auto" and not (isinstance(self.asha_min_resource, int)
                                                     and self.asha_min_resource >= 1):
            raise ConfigError("config key 'sweep.asha_min_resource' must be 'auto' or a positive integer, "
                              f"got {self.asha_min_resource!r}")
        if self.grace_seconds <= self.heartbeat_seconds:
            raise ConfigError("config key 'sweep.grace_seconds' must exceed 'sweep.heartbeat_seconds'")
        if not self.poll_seconds > 0:
            raise ConfigError(f"config key 'sweep.poll_seconds' must be > 0, got {self.poll_seconds!r}")

    @classmethod
    def from_config(cls, sweep: Mapping[str, Any]) -> "SweepSettings":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in dict(sweep).items() if k in names})


def _choose(key: str, value: Any, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ConfigError(f"config key 'sweep.{key}' must be one of {', '.join(allowed)}, got {value!r}")


@dataclasses.dataclass
class SweepResult:
    """What a sweep found. `trials_df` has one row per trial (see `trials_dataframe`)."""

    best_params: dict
    best_value: float | None
    best_trial: int | None
    best_run_dir: str | None
    trials_df: Any  # pandas.DataFrame
    study_name: str
    storage: str
    workdir: str


def split_sweep_config(config: ml_collections.ConfigDict
                       ) -> tuple[ml_collections.ConfigDict, list[ParamSpec], SweepSettings]:
    """Splits an experiment config into (base run config, validated search space, settings)."""
    if "sweep" not in config:
        raise ConfigError("the experiment config has no 'sweep' section: define config.sweep = "
                          "gnntrack.studies.sweep.default_sweep_config() and set config.sweep.space")
    sweep = config.sweep
    if isinstance(sweep, ml_collections.ConfigDict):
        check_known_keys(sweep, default_sweep_config(), where="sweep")
        sweep = sweep.to_dict()
    base = ml_collections.ConfigDict({k: copy.deepcopy(config[k]) for k in config.keys() if k != "sweep"})
    base.lock()
    settings = SweepSettings.from_config({**default_sweep_config().to_dict(), **dict(sweep)})
    specs = parse_search_space(sweep.get("space", ()), base)
    return base, specs, settings
