"""Settings resolution: defaults, then the YAML file, then command-line flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from kgzarr.config import DEFAULTS, load_config_file, resolve_settings
from kgzarr.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_default_file_matches_defaults() -> None:
    """configs/default.yml documents exactly the built-in defaults."""
    sections = load_config_file(REPO_ROOT / "configs" / "default.yml")
    assert set(sections) == set(DEFAULTS)
    for name, values in DEFAULTS.items():
        assert sections[name] == values, name


def test_file_overrides_default(tmp_path: Path) -> None:
    config = tmp_path / "settings.yml"
    config.write_text("extract:\n  batch_size: 64\n  pooling: max\n")
    settings = resolve_settings("extract", {}, config)
    assert settings["batch_size"] == 64
    assert settings["pooling"] == "max"
    assert settings["scale"] == DEFAULTS["extract"]["scale"]


def test_flag_overrides_file(tmp_path: Path) -> None:
    config = tmp_path / "settings.yml"
    config.write_text("extract:\n  batch_size: 64\n")
    settings = resolve_settings("extract", {"batch_size": 8, "scale": None}, config)
    assert settings["batch_size"] == 8
    assert settings["scale"] == "max"


def test_hyphenated_keys_accepted(tmp_path: Path) -> None:
    config = tmp_path / "settings.yml"
    config.write_text("pick-layer:\n  board-size: 9\n")
    assert resolve_settings("pick_layer", {}, config)["board_size"] == 9


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("extract:\n  batch_sise: 64\n", "unknown key 'batch_sise'"),
        ("extrakt:\n  batch_size: 64\n", "unknown section 'extrakt'"),
        ("extract:\n  batch_size: many\n", "extract.batch_size must be int"),
        ("extract:\n  strict: 1\n", "extract.strict must be bool"),
        ("- just\n- a list\n", "must hold a mapping"),
        ("extract: [1, 2]\n", "must be a mapping"),
        ("extract:\n  batch_size: [\n", "not valid YAML"),
    ],
)
def test_bad_file_rejected(tmp_path: Path, text: str, fragment: str) -> None:
    config = tmp_path / "settings.yml"
    config.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config_file(config)
    assert fragment in str(info.value)
    assert str(config) in str(info.value)


def test_missing_file_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yml"
    with pytest.raises(ConfigError, match="nope.yml not found"):
        load_config_file(missing)


def test_single_layer_string(tmp_path: Path) -> None:
    config = tmp_path / "settings.yml"
    config.write_text("extract:\n  layers: rconv14.out\n")
    assert resolve_settings("extract", {}, config)["layers"] == ["rconv14.out"]
