"""Settings for the command-line interface: built-in defaults, a YAML file, flags.

Each subcommand reads its settings from three layers, later ones winning:
the built-in defaults in :data:`DEFAULTS`, the section of that subcommand in
a YAML file given with ``--config``, and the flags on the command line.
``configs/default.yml`` lists every key with its default and meaning.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from kgzarr.errors import ConfigError

__all__ = ["DEFAULTS", "describe_yaml_error", "load_config_file", "resolve_settings"]

# Section -> key -> default. ``None`` means "decided at run time" (for example
# a chunk size chosen from the data, or a worker count from the CPU count).
DEFAULTS: dict[str, dict[str, Any]] = {
    "ingest": {
        "store": None,
        "board_size": None,
        "chunk_rows": None,
        "workers": None,
        "scheduler": "threads",
        "replace": False,
        "rebuild": False,
        "skip_bad": False,
        "include_sgf": False,
        "positions": "all",
        "rules": None,
    },
    "extract": {
        "store": None,
        "model": None,
        "layers": [],
        "layer_selection": None,
        "positions_dir": None,
        "board_size": None,
        "out": "activations",
        "batch_size": 512,
        "chunk_rows": None,
        "device": "auto",
        "precision": "fp32",
        "pooling": "mean",
        "nonneg": "shift",
        "scale": "max",
        "strict": False,
        "scheduler": None,
        "overwrite": False,
        "allow_changed_sources": False,
        "compile_blocks": False,
    },
    "layers": {
        "model": None,
        "board_size": 7,
        "json": False,
    },
    "pick_layer": {
        "model": None,
        "board_size": 7,
        "choose": None,
        "out": "layer_selection.yml",
    },
    "info": {
        "json": False,
    },
    "demo": {
        "out": "kgzarr-demo",
        "positions": 384,
        "seed": 0,
    },
}

# The type every non-None value of a key must have. bool is checked before int
# because bool is a subclass of int in Python.
_TYPES: dict[str, tuple[type, ...]] = {
    "board_size": (int,),
    "chunk_rows": (int,),
    "workers": (int,),
    "batch_size": (int,),
    "positions": (str, int),
    "seed": (int,),
    "layers": (list,),
    "replace": (bool,),
    "rebuild": (bool,),
    "skip_bad": (bool,),
    "include_sgf": (bool,),
    "strict": (bool,),
    "overwrite": (bool,),
    "allow_changed_sources": (bool,),
    "compile_blocks": (bool,),
    "json": (bool,),
}


def load_config_file(path: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """Read and validate a YAML settings file; return its sections."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} not found; check the --config path") from exc
    except OSError as exc:
        raise ConfigError(f"config file {path} could not be read: {exc.strerror}") from exc

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML ({describe_yaml_error(exc)}); fix the file") from exc

    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"config file {path} must hold a mapping of sections "
            f"({', '.join(DEFAULTS)}), found {type(data).__name__}"
        )
    sections: dict[str, dict[str, Any]] = {}
    for section, values in data.items():
        name, settings = _validate_section(path, section, values)
        sections[name] = settings
    return sections


def describe_yaml_error(exc: yaml.YAMLError) -> str:
    """Return a one-line account of a YAML parse error: the problem and its line and column."""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    mark = getattr(exc, "problem_mark", None)
    return problem if mark is None else f"{problem} at line {mark.line + 1}, column {mark.column + 1}"


def _validate_section(path: Path, section: Any, values: Any) -> tuple[str, dict[str, Any]]:
    # YAML has no hyphens in our keys, but users copy flag names; accept both.
    name = str(section).replace("-", "_")
    if name not in DEFAULTS:
        raise ConfigError(
            f"config file {path}: unknown section {section!r}; valid sections are {', '.join(DEFAULTS)}"
        )
    if values is None:
        return name, {}
    if not isinstance(values, Mapping):
        raise ConfigError(f"config file {path}: section {section!r} must be a mapping of settings")

    checked: dict[str, Any] = {}
    for raw_key, value in values.items():
        key = str(raw_key).replace("-", "_")
        if key not in DEFAULTS[name]:
            valid = ", ".join(sorted(DEFAULTS[name]))
            raise ConfigError(
                f"config file {path}: unknown key {raw_key!r} in section {section!r}; valid keys are {valid}"
            )
        if key == "layers" and isinstance(value, str):
            # A single layer written as a plain string, as layer_selection.yml does.
            value = [value]
        _check_type(path, name, key, value)
        checked[key] = value
    return name, checked


def _check_type(path: Path, section: str, key: str, value: Any) -> None:
    expected = _TYPES.get(key)
    if value is None or expected is None:
        return
    if bool in expected:
        ok = isinstance(value, bool)
    else:
        ok = isinstance(value, expected) and not isinstance(value, bool)
    if not ok:
        names = " or ".join(t.__name__ for t in expected)
        raise ConfigError(
            f"config file {path}: {section}.{key} must be {names}, found {value!r}"
        )


def resolve_settings(
    section: str,
    flags: Mapping[str, Any],
    config_file: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Merge defaults, the config file's section and the flags given on the command line.

    ``flags`` contains only the options the user typed. An option left out on
    the command line must be absent or ``None`` there, so the file's value
    shows through.
    """
    settings = dict(DEFAULTS[section])
    if config_file is not None:
        file_sections = load_config_file(config_file)
        settings.update(file_sections.get(section, {}))
    for key, value in flags.items():
        if value is not None:
            settings[key] = value
    return settings
