"""The kgzarr command's help, version, usage errors and exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kgzarr import __version__
from kgzarr.cli import main
from kgzarr.cli.parser import build_parser

SUBCOMMANDS = ["ingest", "info", "layers", "pick-layer", "extract", "demo"]


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kgzarr", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


def test_version_printed() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"kgzarr {__version__}"


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_option_documented(command: str) -> None:
    """Each option of each subcommand has help text."""
    parser = build_parser()
    subparsers = next(action for action in parser._actions if action.dest == "command")
    sub = subparsers.choices[command]
    for action in sub._actions:
        if action.dest == "help":
            continue
        assert action.help, f"{command} {action.option_strings or action.dest} has no help"


def test_unknown_option_exit_2() -> None:
    result = run_cli("extract", "--no-such-flag")
    assert result.returncode == 2
    assert "unrecognized arguments: --no-such-flag" in result.stderr


def test_missing_store_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["ingest", "somewhere"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == "kgzarr: error: missing --store; give it on the command line or in the --config file"


def test_bad_config_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "bad.yml"
    config.write_text("extract:\n  batch_size: lots\n")
    code = main(["extract", "--config", str(config), "--store", "x", "--model", "y", "--layer", "z"])
    err = capsys.readouterr().err
    assert code == 2
    assert "extract.batch_size must be int" in err
    assert "Traceback" not in err
