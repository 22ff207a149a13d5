"""The installed ``kubekms`` console script: version, help, every subcommand documented."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kubekms import __version__
from kubekms.cli.main import cli

KUBEKMS = shutil.which("kubekms", path=str(Path(sys.executable).parent))


def run(*args: str) -> subprocess.CompletedProcess[str]:
    assert KUBEKMS, "the console script is installed with the package"
    return subprocess.run([KUBEKMS, *args], capture_output=True, text=True, timeout=60)


def test_version_is_the_package_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"kubekms, version {__version__}"


def test_help_lists_every_registered_subcommand() -> None:
    result = run("--help")
    assert result.returncode == 0
    for name in cli.commands:
        assert f"  {name}" in result.stdout


@pytest.mark.parametrize("name", sorted(cli.commands))
def test_each_subcommand_has_help(name: str) -> None:
    result = run(name, "--help")
    assert result.returncode == 0, result.stderr
    assert (cli.commands[name].help or "").split("\n")[0].strip()


def test_unknown_subcommand_fails_clearly() -> None:
    result = run("no-such-command")
    assert result.returncode == 2
    assert "No such command" in result.stderr
