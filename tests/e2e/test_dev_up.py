"""The README's main command: ``kubekms dev up --check`` runs the whole mission, twice on one state."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

KUBEKMS = shutil.which("kubekms", path=str(Path(sys.executable).parent))


def dev_up(state_dir: Path) -> subprocess.CompletedProcess[str]:
    assert KUBEKMS
    return subprocess.run(
        [KUBEKMS, "dev", "up", "--check", "--state-dir", str(state_dir)],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_dev_up_shows_the_evidence_and_a_second_run_keeps_everything(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = dev_up(state)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "prefix k8s:enc:kms:v2:kubekms:: yes" in first.stdout
    assert "in etcd: no" in first.stdout
    assert "check passed" in first.stdout
    # installed, and proven applied by the apiserver (a dry-run KMSKey came back with the finalizer)
    assert "the policy that writes the operator's finalizer at creation" in first.stdout
    key_line = next(line for line in first.stdout.splitlines() if "key in the kubekms server" in line)
    assert_client_env_reaches_the_server(state, first.stdout)

    second = dev_up(state)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "existing cluster key" in second.stdout
    assert key_line in second.stdout  # the same key, still there
    assert "check passed" in second.stdout


def assert_client_env_reaches_the_server(state: Path, output: str) -> None:
    """``kubekms dev env`` prints the exports of the last run; the console's URL is the same server's."""
    assert KUBEKMS
    env = subprocess.run([KUBEKMS, "dev", "env", "--state-dir", str(state)], capture_output=True, text=True)
    assert env.returncode == 0, env.stderr
    exports = dict(line.removeprefix("export ").split("=", 1) for line in env.stdout.splitlines())
    assert exports["KUBEKMS_PROVIDER"] == "kubekms"
    assert f"web console: {exports['KUBEKMS_ENDPOINT']}/console/" in output
    credentials = Path(exports["KUBEKMS_CREDENTIALS_FILE"])
    assert credentials.is_file() and credentials.stat().st_mode & 0o077 == 0
    assert (state / "client.env").stat().st_mode & 0o777 == 0o600
    assert "secret_key" not in env.stdout  # a path to the credentials, never the secret itself
