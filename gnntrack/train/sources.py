"""Data sources as plug-ins: where a run's graphs come from, by name (`data.source`).

    @register_data_source("jets", default_config=jets_source_config)
    def prepare_jets(config, workdir, *, progress=True) -> DataSplits: ...

The built-in tracking sources ('simulate', 'events', 'graphs', 'sign_graphs') live in
`gnntrack.train.data`. A registered source gets the whole resolved config and returns the
run's `DataSplits` (lists of `HitGraph` with the task's targets). Its own keys form the group
`data.<name>` (checked against `default_config()` like every other group), so a jets run says
`config.data.jets.path = ...` and a tracking run never sees those keys.

Sources that belong to a study with heavy imports (Pythia 8, FastJet) are imported on first
use from `BUILTIN_SOURCE_MODULES`; sources defined elsewhere arrive through `config.imports`.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Callable

import ml_collections

from gnntrack.errors import ConfigError

TRACKING_SOURCES = ("simulate", "events", "graphs", "sign_graphs")
# Study sources imported on first use: name -> module that registers it.
BUILTIN_SOURCE_MODULES: dict[str, str] = {
    "jets": "gnntrack.jets.source",
    "pflow": "gnntrack.pflow.source",
}


@dataclasses.dataclass(frozen=True)
class DataSource:
    """prepare(config, workdir, *, progress) -> DataSplits; default_config() -> the `data.<name>`
    group's defaults (None: the source has no keys of its own)."""

    prepare: Callable
    default_config: Callable[[], ml_collections.ConfigDict] | None = None


_SOURCES: dict[str, DataSource] = {}


def register_data_source(name: str, default_config: Callable[[], ml_collections.ConfigDict] | None = None
                         ) -> Callable:
    """Decorator registering `prepare` as data source `name` (a later registration replaces it)."""
    if name in TRACKING_SOURCES:
        raise ConfigError(f"data source {name!r} is built in and cannot be replaced")

    def decorator(prepare: Callable) -> Callable:
        _SOURCES[name] = DataSource(prepare=prepare, default_config=default_config)
        return prepare

    return decorator


def available_data_sources() -> list[str]:
    return [*TRACKING_SOURCES, *sorted(set(_SOURCES) | set(BUILTIN_SOURCE_MODULES))]


def registered_source(name: str) -> DataSource | None:
    """The plug-in source `name` (imported first if built in); None for a tracking source.

    Raises ConfigError naming 'data.source' for a name nobody registered."""
    if name in TRACKING_SOURCES:
        return None
    if name not in _SOURCES and name in BUILTIN_SOURCE_MODULES:
        try:
            importlib.import_module(BUILTIN_SOURCE_MODULES[name])
        except ModuleNotFoundError as exc:
            if exc.name != BUILTIN_SOURCE_MODULES[name]:
                raise
    if name not in _SOURCES:
        raise ConfigError(f"config key 'data.source' must be one of {', '.join(available_data_sources())}, "
                          f"got {name!r} (a source of your own is found when the config lists its file "
                          f"in 'imports')")
    return _SOURCES[name]


def source_group_defaults(name: str) -> ml_collections.ConfigDict | None:
    """Defaults of the `data.<name>` group of source `name`, or None when it has none."""
    source = registered_source(name)
    return source.default_config() if source is not None and source.default_config else None


def source_settings(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The `data.<source>` group of `config` with every key its source's defaults give
    (the config's own values win); empty for a source without keys."""
    name = config.data.source
    merged = source_group_defaults(name) or ml_collections.ConfigDict()
    own = config.data.get(name)
    if own is not None:
        merged.update(own.to_dict() if isinstance(own, ml_collections.ConfigDict) else own)
    return merged
