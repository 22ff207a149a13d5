"""What a new user meets following the README, where the fix belongs to code outside the CLI and devenv."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

KUBEKMS = shutil.which("kubekms", path=str(Path(sys.executable).parent))


def _listening(*, reuse_port: bool = False) -> socket.socket:
    """A socket listening on a free loopback port; with ``reuse_port`` as a second kubekms server's would be."""
    sock = socket.socket()
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start(tmp_path: Path, config: dict[str, object]) -> subprocess.CompletedProcess[str]:
    assert KUBEKMS
    (tmp_path / "principals.yaml").write_text(
        yaml.safe_dump([{"name": "admin", "access_key": "AKEXAMPLE0001", "secret_key": "example-secret-0123456789"}])
    )
    (tmp_path / "principals.yaml").chmod(0o600)
    config = {"state_dir": "state", "principals_file": "principals.yaml", **config}
    (tmp_path / "server.yaml").write_text(yaml.safe_dump(config))
    return subprocess.run(
        [KUBEKMS, "server", "--config", str(tmp_path / "server.yaml"), "--init"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_server_on_a_taken_port_names_the_address(tmp_path: Path) -> None:
    with _listening() as taken:
        port = taken.getsockname()[1]
        result = _start(tmp_path, {"listen": f"127.0.0.1:{port}"})
    assert result.returncode == 2
    assert "cannot start" in result.stderr + result.stdout
    assert f"127.0.0.1:{port}" in result.stderr + result.stdout


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("reuse_port", [False, True], ids=["plain", "reuse_port"])
def test_a_taken_listen_address_is_one_line_naming_it_and_what_to_do(
    tmp_path: Path, workers: int, reuse_port: bool
) -> None:
    """Also when its holder set SO_REUSEPORT (a second kubekms server): the workers' sockets would otherwise share
    the port with it and split its connections between two servers."""
    with _listening(reuse_port=reuse_port) as taken:
        port = taken.getsockname()[1]
        result = _start(tmp_path, {"listen": f"127.0.0.1:{port}", "workers": workers})
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert result.returncode == 2, result.stderr
    assert [line["message"] for line in lines] == ["cannot start"], result.stderr
    assert lines[0]["error"].startswith(f"cannot listen on 127.0.0.1:{port} (listen): Address already in use; "
                                        "another process is listening there"), lines  # fmt: skip


@pytest.mark.parametrize("setting", ["listen", "rest_listen"])
@pytest.mark.parametrize("reuse_port", [False, True], ids=["plain", "reuse_port"])
def test_a_taken_cloud_kms_address_is_refused_naming_its_setting(
    tmp_path: Path, setting: str, reuse_port: bool
) -> None:
    """gRPC binds with SO_REUSEPORT by default: it would have shared a port held with SO_REUSEPORT, unnoticed."""
    with _listening(reuse_port=reuse_port) as taken:
        port = taken.getsockname()[1]
        gcp = {"listen": f"127.0.0.1:{_free_port()}", "rest_listen": f"127.0.0.1:{_free_port()}"}
        gcp[setting] = f"127.0.0.1:{port}"
        result = _start(tmp_path, {"listen": f"127.0.0.1:{_free_port()}", "workers": 1, "gcp": gcp})
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    refusal = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")][-1]
    assert refusal["message"] == "cannot start", result.stderr
    assert refusal["error"].startswith(f"cannot listen on 127.0.0.1:{port} (gcp.{setting}): Address already in use;")
