"""Hyperparameter search spaces: one entry per dotted config key, validated against the base config.

An experiment file lists its search space as a tuple of plain dicts (ml_collections cannot hold
dotted keys such as "optimizer.lr" as field names), most conveniently built with the helpers here:

    from gnntrack.studies import search_space as ss
    config.sweep.space = (
        ss.log_uniform("optimizer.lr", 1e-4, 1e-2),      # float, sampled uniformly in log(x)
        ss.uniform("model.dropout", 0.0, 0.5, step=0.1),  # float (optionally on a step grid)
        ss.int_range("model.hidden", 16, 64, step=16),    # integer (optionally log-spaced)
        ss.choice("model.message", ["sum", "mean"]),       # categorical
    )

Each entry is a dict `{"key", "distribution", ...}` with distribution one of
`log_uniform | uniform | int | categorical`. Float entries may carry `grid=[...]`: the values a
grid search visits (ints and categoricals visit every value). `parse_search_space` turns the
entries into `ParamSpec`s and raises one `ConfigError` naming the offending entry.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math
from typing import Any, Iterable, Mapping, Sequence

import ml_collections

from gnntrack.config import set_by_path
from gnntrack.errors import ConfigError
from gnntrack.train.defaults import default_config, validate_config

DISTRIBUTIONS = ("log_uniform", "uniform", "int", "categorical")
_ALLOWED_FIELDS = {
    "log_uniform": {"key", "distribution", "low", "high", "grid"},
    "uniform": {"key", "distribution", "low", "high", "step", "grid"},
    "int": {"key", "distribution", "low", "high", "step", "log"},
    "categorical": {"key", "distribution", "choices"},
}
# Optuna stores categorical choices in its database: only these types round-trip.
_CATEGORICAL_TYPES = (type(None), bool, int, float, str)


# ---------------------------------------------------------------------------------------------
# Builders used in experiment files (plain dicts so that they live happily inside a ConfigDict).

def log_uniform(key: str, low: float, high: float, *, grid: Sequence[float] | None = None) -> dict:
    """Float in [low, high] sampled uniformly in log space (low > 0), e.g. learning rates."""
    return _entry(key, "log_uniform", low=low, high=high, grid=grid)


def uniform(key: str, low: float, high: float, *, step: float | None = None,
            grid: Sequence[float] | None = None) -> dict:
    """Float in [low, high], optionally restricted to low + k * step."""
    return _entry(key, "uniform", low=low, high=high, step=step, grid=grid)


def int_range(key: str, low: int, high: int, *, step: int = 1, log: bool = False) -> dict:
    """Integer in [low, high] (inclusive) on a `step` grid, or log-spaced (`log=True`, step 1)."""
    return _entry(key, "int", low=low, high=high, step=step, log=log)


def choice(key: str, choices: Sequence[Any]) -> dict:
    """One of `choices` (None, bool, int, float or str values)."""
    return _entry(key, "categorical", choices=list(choices))


def _entry(key: str, distribution: str, **fields: Any) -> dict:
    return {"key": key, "distribution": distribution,
            **{k: (list(v) if isinstance(v, tuple) else v) for k, v in fields.items() if v is not None}}


# ---------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ParamSpec:
    """One validated search-space entry (`key` is a dotted path into the run config)."""

    key: str
    distribution: str
    low: float | int | None = None
    high: float | int | None = None
    step: float | int | None = None
    log: bool = False
    choices: tuple = ()
    grid: tuple | None = None

    def suggest(self, trial) -> Any:
        """Asks an optuna trial for this parameter (returns the fixed value for enqueued trials)."""
        if self.distribution == "categorical":
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.distribution == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high), step=int(self.step or 1),
                                     log=self.log)
        return trial.suggest_float(self.key, float(self.low), float(self.high), step=self.step, log=self.log)

    def contains(self, value: Any) -> bool:
        """Whether `value` can be a sample of this entry (bounds, step, choices)."""
        if self.distribution == "categorical":
            return any(type(value) is type(c) and value == c for c in self.choices)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.distribution == "int" and not isinstance(value, int):
            return False
        if not self.low <= value <= self.high:
            return False
        if self.step is not None and not self.log:
            k = (value - self.low) / self.step
            return abs(k - round(k)) < 1e-9
        return True

    def grid_values(self) -> list:
        """The values a grid search visits for this parameter (ConfigError if undefined)."""
        if self.distribution == "categorical":
            return list(self.choices)
        if self.grid is not None:
            return list(self.grid)
        if self.distribution == "int":
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        if self.step is not None:
            n = int(math.floor((self.high - self.low) / self.step + 1e-9)) + 1
            return [round(self.low + i * self.step, 12) for i in range(n)]
        raise ConfigError(f"search-space entry '{self.key}' ({self.distribution}) has no grid: "
                          "give it grid=[...] (or a step) to use the grid sampler")

    def to_dict(self) -> dict:
        out = {"key": self.key, "distribution": self.distribution}
        if self.distribution == "categorical":
            out["choices"] = list(self.choices)
        else:
            out.update(low=self.low, high=self.high)
            if self.step is not None:
                out["step"] = self.step
            if self.distribution == "int" and self.log:
                out["log"] = True
        if self.grid is not None:
            out["grid"] = list(self.grid)
        return out


def parse_search_space(entries: Iterable[Mapping[str, Any]],
                       base_config: ml_collections.ConfigDict | None = None) -> list[ParamSpec]:
    """Validates search-space entries and returns ParamSpecs (in order).

    Args:
      entries: dicts as built by `log_uniform`, `uniform`, `int_range`, `choice`.
      base_config: when given, every key must exist in it and every candidate value (bounds,
        choices, grid values) must be accepted by ml_collections' type check for that key.

    Raises:
      ConfigError naming the entry (`sweep.space[i] 'optimizer.lr'`) and what is wrong.
    """
    specs: list[ParamSpec] = []
    seen: set[str] = set()
    for index, raw in enumerate(entries or ()):
        spec = _parse_entry(index, raw)
        where = _where(index, spec.key)
        if spec.key in seen:
            raise ConfigError(f"{where}: key listed twice in the search space")
        seen.add(spec.key)
        if base_config is not None:
            _check_against_config(spec, base_config, where)
        specs.append(spec)
    if not specs:
        raise ConfigError("sweep.space: the search space is empty; list at least one parameter")
    if base_config is not None and _is_run_config(base_config):
        _check_trial_configs(specs, base_config)
    return specs


def _where(index: int, key: Any) -> str:
    return f"sweep.space[{index}] {key!r}" if key is not None else f"sweep.space[{index}]"


def _parse_entry(index: int, raw: Any) -> ParamSpec:
    if isinstance(raw, ml_collections.ConfigDict):
        raw = raw.to_dict()
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{_where(index, None)}: expected a dict like "
                          f"{{'key': 'optimizer.lr', 'distribution': 'log_uniform', 'low': ..., 'high': ...}}, "
                          f"got {raw!r}")
    key = raw.get("key")
    where = _where(index, key)
    if not isinstance(key, str) or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"{where}: 'key' must be a dotted config key such as 'optimizer.lr'")
    dist = raw.get("distribution")
    if dist not in DISTRIBUTIONS:
        raise ConfigError(f"{where}: unknown distribution {dist!r}; use one of {', '.join(DISTRIBUTIONS)}")
    extra = set(raw) - _ALLOWED_FIELDS[dist]
    if extra:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(sorted(extra))} for distribution {dist!r} "
                          f"(allowed: {', '.join(sorted(_ALLOWED_FIELDS[dist] - {'key', 'distribution'}))})")

    if dist == "categorical":
        choices = raw.get("choices")
        if not isinstance(choices, (list, tuple)) or not choices:
            raise ConfigError(f"{where}: 'choices' must be a non-empty list")
        bad = [c for c in choices if not isinstance(c, _CATEGORICAL_TYPES)]
        if bad:
            raise ConfigError(f"{where}: choices must be None, bool, int, float or str; got {bad[0]!r}")
        if len(set(map(repr, choices))) != len(choices):
            raise ConfigError(f"{where}: duplicate choices in {list(choices)!r}")
        return ParamSpec(key, dist, choices=tuple(choices))

    low, high = raw.get("low"), raw.get("high")
    for name, value in (("low", low), ("high", high)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"{where}: '{name}' must be a finite number, got {value!r}")
    if low > high:
        raise ConfigError(f"{where}: low={low!r} > high={high!r}")
    step = raw.get("step")
    log = bool(raw.get("log", dist == "log_uniform"))
    if dist == "log_uniform" and low <= 0:
        raise ConfigError(f"{where}: log-uniform needs low > 0, got low={low!r}")
    if dist == "int":
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high)):
            raise ConfigError(f"{where}: int bounds must be integers, got low={low!r}, high={high!r}")
        step = 1 if step is None else step
        if not isinstance(step, int) or isinstance(step, bool) or step < 1:
            raise ConfigError(f"{where}: int 'step' must be a positive integer, got {step!r}")
        if log and low <= 0:
            raise ConfigError(f"{where}: log-spaced int needs low > 0, got low={low!r}")
        if log and step != 1:
            raise ConfigError(f"{where}: log-spaced int needs step=1 (optuna cannot combine both)")
    elif step is not None:
        if isinstance(step, bool) or not isinstance(step, (int, float)) or not step > 0:
            raise ConfigError(f"{where}: 'step' must be a positive number, got {step!r}")
        step = float(step)
    grid = raw.get("grid")
    if grid is not None:
        if not isinstance(grid, (list, tuple)) or not grid:
            raise ConfigError(f"{where}: 'grid' must be a non-empty list of values")
        outside = [g for g in grid if isinstance(g, bool) or not isinstance(g, (int, float))
                   or not low <= g <= high]
        if outside:
            raise ConfigError(f"{where}: grid value {outside[0]!r} is not a number in [{low}, {high}]")
        grid = tuple(float(g) for g in grid)
    if dist != "int":
        low, high = float(low), float(high)
    return ParamSpec(key, dist, low=low, high=high, step=step, log=log, grid=grid)


def _candidates(spec: ParamSpec) -> list:
    if spec.distribution == "categorical":
        return list(spec.choices)
    return [spec.low, spec.high] + list(spec.grid or ())


def _check_against_config(spec: ParamSpec, base_config: ml_collections.ConfigDict, where: str) -> None:
    """Dry-runs `set_by_path` with each candidate value on a copy of the config."""
    scratch = copy.deepcopy(base_config)
    for value in _candidates(spec):
        try:
            set_by_path(scratch, spec.key, value)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: value {value!r} does not fit the config key: {exc}") from None


def _is_run_config(config: ml_collections.ConfigDict) -> bool:
    """Whether `config` holds every group of a training run's config (what the default training
    function validates); stand-ins for tests and custom objectives need not."""
    return all(group in config for group in default_config().keys())


def _check_trial_configs(specs: Sequence[ParamSpec], base_config: ml_collections.ConfigDict) -> None:
    """Runs the run-config validation on a trial config for every candidate value of every entry.

    Each value changes one key of a valid reference config (the base, or the base with every
    entry at its first candidate when the base only holds placeholders), so a failure is that
    value's. The validation's limits are intervals (lr > 0, momentum in [0, 1), ...): a range whose
    bounds pass cannot sample a value that fails.
    """
    reference = base_config
    try:
        validate_config(reference)
    except ConfigError as exc:
        reference = apply_params(base_config, {spec.key: _candidates(spec)[0] for spec in specs})
        try:
            validate_config(reference)
        except ConfigError:
            raise ConfigError(f"sweep: the base run config is invalid: {exc}") from None
    for index, spec in enumerate(specs):
        for value in _candidates(spec):
            try:
                validate_config(apply_params(reference, {spec.key: value}))
            except ConfigError as exc:
                raise ConfigError(f"{_where(index, spec.key)}: a trial with value {value!r} would fail: "
                                  f"{exc}") from None


def apply_params(base_config: ml_collections.ConfigDict, params: Mapping[str, Any]) -> ml_collections.ConfigDict:
    """A copy of `base_config` with `{dotted_key: value}` applied (the base is not modified)."""
    config = copy.deepcopy(base_config)
    for key, value in params.items():
        set_by_path(config, key, value)
    return config


def grid_points(specs: Sequence[ParamSpec]) -> list[dict]:
    """Every combination of the specs' grid values, in row-major order (last key fastest)."""
    axes = [spec.grid_values() for spec in specs]
    return [dict(zip((s.key for s in specs), combo)) for combo in itertools.product(*axes)]
