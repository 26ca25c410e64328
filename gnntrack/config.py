"""Experiment configs: plain-Python files with `get_config() -> ml_collections.ConfigDict`.

    config = load_config("experiments/quickstart.py", ["--config.optimizer.lr=1e-3"])

Overrides use dotted paths relative to the config root (`--config.` prefix optional) and are
type-checked by ml_collections against the existing value; unknown keys raise a `ConfigError`
naming the key and the closest known keys. A resolved config is saved with the run as JSON
(`config.json`) and can be reloaded with `load_config` as well.
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
import json
import os
import traceback
from pathlib import Path
from typing import Any, Iterable

import ml_collections

from gnntrack.errors import ConfigError, GnnTrackError, InputError
from gnntrack.io.atomic import write_json_atomic

CONFIG_FILE_NAME = "config.json"


def load_config(path: str | os.PathLike, overrides: Iterable[str] = (), *, arg: str | None = None
                ) -> ml_collections.ConfigDict:
    """Loads an experiment config and applies dotted overrides.

    Args:
      path: a Python file defining `get_config(arg=None)` (or `get_config()`), or a JSON file
        previously written by `save_config` (or a run directory holding one).
      overrides: strings `--config.a.b=value`, `config.a.b=value` or `a.b=value`.
      arg: optional string passed to `get_config(arg)` (big_vision style `file.py:arg`).

    Returns:
      An unlocked-but-typesafe ConfigDict (locked: new keys cannot be added by accident).
    """
    path = Path(path)
    if path.is_dir() and (path / CONFIG_FILE_NAME).exists():
        path = path / CONFIG_FILE_NAME
    if ":" in path.name and arg is None:
        name, arg = path.name.split(":", 1)
        path = path.with_name(name)
    if not path.exists():
        raise InputError(f"config file not found: {path}{_closest_file_hint(path)}")
    if path.suffix == ".json":
        config = ml_collections.ConfigDict(_read_json(path))
        _retype_flexible_fields(config)
    elif path.suffix == ".py":
        config = _load_python_config(path, arg)
    else:
        raise InputError(f"config file must be .py (get_config) or .json: {path}")
    config.lock()
    apply_overrides(config, overrides)
    return config


# Keys whose defaults accept values of several types (declared with an `object`-typed
# FieldReference); JSON has no field types, so re-declare them after reading a config.json,
# or e.g. --config.model.remat=iteration would be refused over a saved `false`.
FLEXIBLE_KEYS = ("model.remat",)


def _retype_flexible_fields(config: ml_collections.ConfigDict) -> None:
    for dotted in FLEXIBLE_KEYS:
        *parents, leaf = dotted.split(".")
        node = config
        for part in parents:
            node = node.get(part) if isinstance(node, ml_collections.ConfigDict) else None
        if isinstance(node, ml_collections.ConfigDict) and leaf in node:
            node[leaf] = ml_collections.FieldReference(node[leaf], field_type=object)


def _closest_file_hint(path: Path) -> str:
    """` (did you mean <sibling>?)` for the most similar file name next to `path`, else ``."""
    try:
        names = [p.name for p in path.parent.iterdir() if p.is_file()]
    except OSError:  # the directory is missing too
        return ""
    close = difflib.get_close_matches(path.name, names, n=1)
    return f" (did you mean {path.with_name(close[0])}?)" if close else ""


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        where = f"line {exc.lineno}, column {exc.colno}: {exc.msg}" if isinstance(exc, json.JSONDecodeError) \
            else exc.reason
        raise InputError(f"{path}: not valid JSON ({where}); a run's config.json is written by "
                         "gnntrack, or write a .py config with get_config()") from None


def _load_python_config(path: Path, arg: str | None) -> ml_collections.ConfigDict:
    spec = importlib.util.spec_from_file_location(f"_gnntrack_config_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except GnnTrackError:
        raise
    except Exception as exc:
        raise InputError(_user_code_error(path, "", exc)) from None
    if not hasattr(module, "get_config"):
        raise InputError(f"config file {path} defines no get_config()")
    try:
        config = module.get_config(arg) if arg is not None else module.get_config()
    except GnnTrackError:  # already one clear message (e.g. a base config it loads is missing)
        raise
    except Exception as exc:
        raise InputError(_user_code_error(path, "get_config() raised ", exc)) from None
    if not isinstance(config, ml_collections.ConfigDict):
        raise InputError(f"get_config() in {path} must return an ml_collections.ConfigDict")
    return config


def _user_code_error(path: Path, what: str, exc: Exception) -> str:
    """`config file PATH: <what>Type: message`, then the traceback from the config file's first
    frame on (the frames of gnntrack and importlib that ran it are left out; so is a
    "Traceback" header, the exception line being the first line). A SyntaxError shows its line."""
    lines = traceback.format_exception_only(exc)
    head = lines[-1].strip()
    if isinstance(exc, SyntaxError):
        frames = lines[:-1]  # '  File "...", line N' and the offending line with a caret
    else:
        tb, target = exc.__traceback__, path.resolve()
        while tb is not None and Path(tb.tb_frame.f_code.co_filename).resolve() != target:
            tb = tb.tb_next
        frames = traceback.format_tb(tb)
    body = "".join(frames).rstrip("\n")
    return f"config file {path}: {what}{head}" + (f"\n{body}" if body else "")


def apply_overrides(config: ml_collections.ConfigDict, overrides: Iterable[str]) -> None:
    """Applies `a.b=value` overrides in place; unknown keys raise ConfigError."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"override {item!r} must look like --config.key=value")
        key = key.strip().lstrip("-")
        if key.startswith("config."):
            key = key[len("config."):]
        set_by_path(config, key, parse_value(raw))


def parse_value(raw: str) -> Any:
    """Parses an override value: Python literal if possible (1e-3, [1, 2], True, None), else str."""
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        lowered = raw.strip().lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        if lowered in ("none", "null"):
            return None
        return raw


def set_by_path(config: ml_collections.ConfigDict, dotted_key: str, value: Any) -> None:
    """Sets `config.<dotted_key> = value`, checking that every path component exists."""
    parts = dotted_key.split(".")
    node = config
    for depth, part in enumerate(parts):
        if not isinstance(node, (ml_collections.ConfigDict, dict)) or part not in node:
            known = list(node.keys()) if isinstance(node, (ml_collections.ConfigDict, dict)) else []
            prefix = ".".join(parts[:depth])
            hint = difflib.get_close_matches(part, known, n=3)
            where = f" under '{prefix}'" if prefix else ""
            raise ConfigError(
                f"unknown config key '{dotted_key}': no '{part}'{where}"
                + (f"; did you mean {', '.join(repr(h) for h in hint)}?" if hint else
                   f"; known keys: {', '.join(sorted(known))}" if known else ""))
        if depth == len(parts) - 1:
            old = node[part]
            value = _coerce(value, old, dotted_key)
            try:
                node[part] = value
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"bad value for config key '{dotted_key}': {exc}") from exc
        else:
            node = node[part]


def _coerce(value: Any, old: Any, key: str) -> Any:
    """Allows int -> float and list <-> tuple; other type changes are left to ml_collections."""
    if isinstance(old, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(old, tuple) and isinstance(value, list):
        return tuple(value)
    if isinstance(old, list) and isinstance(value, tuple):
        return list(value)
    if isinstance(old, ml_collections.ConfigDict) and not isinstance(value, (dict, ml_collections.ConfigDict)):
        raise ConfigError(f"config key '{key}' is a group; set one of its fields ({', '.join(old.keys())})")
    return value


def check_known_keys(config: ml_collections.ConfigDict, reference: ml_collections.ConfigDict,
                     where: str = "config") -> None:
    """Raises ConfigError for any key in `config` that `reference` lacks (recursively)."""
    for key in config.keys():
        if key not in reference:
            hint = difflib.get_close_matches(key, list(reference.keys()), n=3)
            raise ConfigError(f"unknown config key '{where}.{key}'"
                              + (f"; did you mean {', '.join(repr(h) for h in hint)}?" if hint else ""))
        if isinstance(config[key], ml_collections.ConfigDict) and isinstance(reference[key], ml_collections.ConfigDict):
            check_known_keys(config[key], reference[key], f"{where}.{key}")


def config_to_dict(config: ml_collections.ConfigDict) -> dict:
    """Plain nested dict (tuples become lists) for JSON."""
    return json.loads(config.to_json_best_effort())


def save_config(config: ml_collections.ConfigDict, workdir: str | os.PathLike) -> Path:
    """Writes the resolved config to `<workdir>/config.json` atomically and returns the path."""
    path = Path(workdir) / CONFIG_FILE_NAME
    write_json_atomic(path, config_to_dict(config))
    return path
