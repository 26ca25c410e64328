"""Checking a config group's keys against its defaults, with the closest known keys as a hint.

A leaf module (ml_collections and the package's errors only): `gnntrack.config` and the
registries of named groups (`gnntrack.nn.registry`, `gnntrack.tasks`) both use it, while config
reads a named group's defaults from those registries.
"""

from __future__ import annotations

import difflib
from typing import Iterable

import ml_collections

from gnntrack.errors import ConfigError


def did_you_mean(key: str, known: Iterable[str]) -> str:
    """`; did you mean 'a', 'b'?` for up to three known keys close to `key`, else ``."""
    hint = difflib.get_close_matches(key, list(known), n=3)
    return f"; did you mean {', '.join(repr(h) for h in hint)}?" if hint else ""


def check_known_keys(config: ml_collections.ConfigDict, reference: ml_collections.ConfigDict,
                     where: str = "config") -> None:
    """Raises ConfigError for any key in `config` that `reference` lacks (recursively), naming
    it as `<where>.<key>` with the closest keys `reference` has."""
    for key in config.keys():
        if key not in reference:
            raise ConfigError(f"unknown config key '{where}.{key}'{did_you_mean(key, reference.keys())}")
        if isinstance(config[key], ml_collections.ConfigDict) and isinstance(reference[key], ml_collections.ConfigDict):
            check_known_keys(config[key], reference[key], f"{where}.{key}")
