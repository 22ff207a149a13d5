"""``kubekms dev up`` on a fresh machine: what it says when something the user must provide is missing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from kubekms.cli.main import cli

KUBEKMS = shutil.which("kubekms", path=str(Path(sys.executable).parent))


def test_dev_up_without_go_says_what_to_install_in_one_line(tmp_path: Path) -> None:
    """No cached binaries and no Go: one line naming what to install, exit 1, no traceback."""
    assert KUBEKMS
    env = {k: v for k, v in os.environ.items() if k not in ("KUBEKMS_ASSETS", "XDG_CACHE_HOME")}
    env |= {"PATH": "/usr/bin:/bin", "XDG_CACHE_HOME": str(tmp_path / "cache"), "HOME": str(tmp_path)}
    assert shutil.which("go", path=env["PATH"]) is None, "this test needs a PATH without Go"
    result = subprocess.run(
        [KUBEKMS, "dev", "up", "--check", "--state-dir", str(tmp_path / "state")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: Go is not on PATH; install Go 1.24+ (https://go.dev/dl/) and retry"
    ]


def test_dev_up_pods_as_another_user_says_it_needs_root_before_starting_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fake: these tests run as root and the venv's interpreter is not reachable for another user, so the
    effective uid is faked; nothing may start (no control plane, no state written) before the refusal."""
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    state = tmp_path / "pods"
    result = CliRunner().invoke(cli, ["dev", "up", "--pods", "--check", "--state-dir", str(state)])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: --pods runs a real node") and "needs root" in result.stderr
    assert "leave out --pods" in result.stderr
    assert not state.exists()
