"""Experiment configs: plain-Python files with `get_config() -> ml_collections.ConfigDict`.

    config = load_config("experiments/quickstart.py", ["--config.optimizer.lr=1e-3"])

Overrides use dotted paths relative to the config root (`--config.` prefix optional) and are
type-checked by ml_collections against the existing value; unknown keys raise a `ConfigError`
naming the key and the closest known keys. A resolved config is saved with the run as JSON
(`config.json`) and can be reloaded with `load_config` as well.

Two kinds of keys are resolved as they are set:
  * `imports`: modules (`my_pkg.models`) or `.py` files to import before anything is built, so
    that models, messages or tasks registered there are known in every process that loads or
    rebuilds the config (train, evaluate, sweep workers, study subprocesses). Files are resolved
    relative to the experiment file and stored absolute.
  * `<group>.name` of a group whose keys depend on the name (`model`, `task`): setting it
    replaces the group by the new choice's defaults plus the values set away from the old
    choice's defaults that the new choice also has (`swap_named_group`). Overrides set `imports`
    first and names second, so `--config.model.name=X --config.model.hidden=32` works in either
    order.
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import importlib
import importlib.util
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any, Iterable

import ml_collections

from gnntrack.errors import ConfigError, GnnTrackError, InputError
from gnntrack.io.atomic import write_json_atomic
from gnntrack.keys import did_you_mean

CONFIG_FILE_NAME = "config.json"
IMPORTS_KEY = "imports"


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
        config = _load_python_config(path.resolve(), arg)
    else:
        raise InputError(f"config file must be .py (get_config) or .json: {path}")
    config.lock()
    base_dir = path.resolve().parent
    resolve_imports(config, base_dir)
    apply_overrides(config, overrides, base_dir=base_dir)
    return config


def resolve_imports(config: ml_collections.ConfigDict, base_dir: str | os.PathLike | None = None) -> None:
    """Makes the file paths in `config.imports` absolute (relative ones are taken relative to
    `base_dir`, default the working directory) and imports every entry (`import_plugins`)."""
    if IMPORTS_KEY not in config:
        return
    entries = config[IMPORTS_KEY]
    if isinstance(entries, str) or not isinstance(entries, (list, tuple)):
        raise ConfigError(f"config key '{IMPORTS_KEY}' must be a list of module names or .py files, "
                          f"got {entries!r}")
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    resolved = [str((base / e).resolve()) if _is_file_entry(e) else e for e in entries]
    if list(entries) != resolved:
        config[IMPORTS_KEY] = type(entries)(resolved)
    import_plugins(config)


# Entries imported in this process (module names, absolute file paths).
_IMPORTED: set[str] = set()


def _is_file_entry(entry: Any) -> bool:
    return isinstance(entry, str) and (entry.endswith(".py") or "/" in entry or os.sep in entry)


def import_plugins(config: ml_collections.ConfigDict) -> None:
    """Imports every module name or `.py` file listed in `config.imports` (once per process).

    A missing module or file is a ConfigError naming it; an error raised by the imported code is
    an InputError showing its traceback from that file on.
    """
    entries = config.get(IMPORTS_KEY, None) or ()
    for entry in entries:
        if not isinstance(entry, str) or not entry:
            raise ConfigError(f"config key '{IMPORTS_KEY}' must hold module names or .py file paths, "
                              f"got {entry!r}")
        key = str(Path(entry).resolve()) if _is_file_entry(entry) else entry
        if key not in _IMPORTED:
            (_import_file if _is_file_entry(entry) else _import_module)(key)
            _IMPORTED.add(key)


def _import_file(path: str) -> None:
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"config key '{IMPORTS_KEY}': file not found: {file}{_closest_file_hint(file)}")
    # One module per file, named after its absolute path: a second import in this process would
    # run its registrations again, and the classes defined there get a stable module name.
    name = f"_gnntrack_import_{file.stem}_{hashlib.sha1(path.encode()).hexdigest()[:8]}"
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except GnnTrackError:
        del sys.modules[name]
        raise
    except Exception as exc:
        del sys.modules[name]
        raise InputError(_user_code_error(file, "", exc, what_file="imported file")) from None


def _import_module(name: str) -> None:
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
            raise ConfigError(f"config key '{IMPORTS_KEY}': no module named {name!r} (list an "
                              f"importable module or a .py file)") from None
        raise InputError(_user_code_error(Path(name), "", exc, what_file="imported module")) from None
    except GnnTrackError:
        raise
    except Exception as exc:
        raise InputError(_user_code_error(Path(name), "", exc, what_file="imported module")) from None


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


def _user_code_error(path: Path, what: str, exc: Exception, what_file: str = "config file") -> str:
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
    return f"{what_file} {path}: {what}{head}" + (f"\n{body}" if body else "")


def apply_overrides(config: ml_collections.ConfigDict, overrides: Iterable[str], *,
                    base_dir: str | os.PathLike | None = None) -> None:
    """Applies `a.b=value` overrides in place; unknown keys raise ConfigError.

    `imports` is set (and imported, files relative to `base_dir`) first and the names of named
    groups (`model.name`, ...) second, so that the other keys find the groups they belong to.
    """
    parsed = []
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"override {item!r} must look like --config.key=value")
        key = key.strip().lstrip("-")
        if key.startswith("config."):
            key = key[len("config."):]
        parsed.append((key, parse_value(raw)))

    def rank(item):
        key = item[0]
        return 0 if key == IMPORTS_KEY else 1 if _named_group_of(key) or key == DATA_SOURCE_KEY else 2

    for key, value in sorted(parsed, key=rank):  # stable: same-rank overrides keep their order
        set_by_path(config, key, value)
        if key == IMPORTS_KEY:
            resolve_imports(config, base_dir)


# Groups whose keys depend on their `name`.
NAMED_GROUPS = ("model", "task")
# A plug-in data source brings its own group `data.<source>` (gnntrack.train.sources).
DATA_SOURCE_KEY = "data.source"


def _named_group_of(dotted_key: str) -> str | None:
    group, _, leaf = dotted_key.partition(".")
    return group if leaf == "name" and group in NAMED_GROUPS else None


def named_group_defaults(group: str, name: str) -> ml_collections.ConfigDict:
    """The default config group of choice `name` of named group `group` (ConfigError if unknown)."""
    # Imported here: the registries load JAX and Flax, which reading a config does not need.
    if group == "model":
        from gnntrack.nn.registry import default_model_config  # noqa: PLC0415

        return default_model_config(name)
    from gnntrack.tasks import default_task_config  # noqa: PLC0415

    return default_task_config(name)


def _add_source_group(config: ml_collections.ConfigDict, source: str) -> None:
    """Gives `config.data` the group `data.<source>` of a plug-in source, if it has none yet."""
    from gnntrack.train.sources import source_group_defaults  # noqa: PLC0415 -- imports plug-ins

    group = source_group_defaults(source)
    if group is not None and source not in config.data:
        config.data[source] = group


def swap_named_group(old: ml_collections.ConfigDict, new_defaults: ml_collections.ConfigDict,
                     old_defaults: ml_collections.ConfigDict | None) -> ml_collections.ConfigDict:
    """`new_defaults` plus every value of `old` that differs from `old_defaults` (what the
    experiment or the user set) under a key `new_defaults` also has; `name` comes from the new.

    With `old_defaults` None (the old choice is not registered here), every shared key is kept.
    """
    for key in old.keys():
        if key == "name" or key not in new_defaults:
            continue
        value = old[key]
        if old_defaults is not None and key in old_defaults and _same(value, old_defaults[key]):
            continue
        set_by_path(new_defaults, key, value.to_dict() if isinstance(value, ml_collections.ConfigDict)
                    else value)
    return new_defaults


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, ml_collections.ConfigDict) and isinstance(b, ml_collections.ConfigDict):
        return a.to_dict() == b.to_dict()
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return list(a) == list(b)
    return type(a) is type(b) and a == b


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
            where = f" under '{prefix}'" if prefix else ""
            hint = did_you_mean(part, known) or (f"; known keys: {', '.join(sorted(known))}" if known else "")
            raise ConfigError(f"unknown config key '{dotted_key}': no '{part}'{where}{hint}")
        if depth == len(parts) - 1 and depth == 1 and _named_group_of(dotted_key) \
                and isinstance(node, ml_collections.ConfigDict) and value != node[part]:
            _set_named_group(config, parts[0], value)
        elif depth == len(parts) - 1:
            old = node[part]
            value = _coerce(value, old, dotted_key)
            try:
                node[part] = value
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"bad value for config key '{dotted_key}': {exc}") from exc
            if dotted_key == DATA_SOURCE_KEY:
                _add_source_group(config, value)
        else:
            node = node[part]


def _set_named_group(config: ml_collections.ConfigDict, group: str, name: Any) -> None:
    """`config.<group>.name = name`, swapping the whole group (`swap_named_group`)."""
    if not isinstance(name, str):
        raise ConfigError(f"config key '{group}.name' must be a string, got {name!r}")
    import_plugins(config)  # a worker rebuilding a config: the new name may live in a plugin
    old = config[group]
    try:
        old_defaults = named_group_defaults(group, old.get("name"))
    except ConfigError:
        old_defaults = None
    new = swap_named_group(old, named_group_defaults(group, name), old_defaults)
    if config.is_locked:
        new.lock()
    config[group] = new


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


def config_to_dict(config: ml_collections.ConfigDict) -> dict:
    """Plain nested dict (tuples become lists) for JSON."""
    return json.loads(config.to_json_best_effort())


def save_config(config: ml_collections.ConfigDict, workdir: str | os.PathLike) -> Path:
    """Writes the resolved config to `<workdir>/config.json` atomically and returns the path."""
    path = Path(workdir) / CONFIG_FILE_NAME
    write_json_atomic(path, config_to_dict(config))
    return path
