"""What a new user meets following the README, where the fix belongs to code outside the CLI and devenv."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

KUBEKMS = shutil.which("kubekms", path=str(Path(sys.executable).parent))


@pytest.mark.xfail(
    strict=True,
    reason="routed to lead: kubekms/server/workers.py binds without naming the address: "
    "'[Errno 98] Address already in use' must say which listen address is taken",
)
def test_server_on_a_taken_port_names_the_address(tmp_path: Path) -> None:
    assert KUBEKMS
    (tmp_path / "principals.yaml").write_text(
        yaml.safe_dump([{"name": "admin", "access_key": "AKEXAMPLE0001", "secret_key": "example-secret-0123456789"}])
    )
    (tmp_path / "principals.yaml").chmod(0o600)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = {"listen": f"127.0.0.1:{port}", "state_dir": "state", "principals_file": "principals.yaml"}
        (tmp_path / "server.yaml").write_text(yaml.safe_dump(config))
        result = subprocess.run(
            [KUBEKMS, "server", "--config", str(tmp_path / "server.yaml"), "--init"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert "cannot start" in result.stderr + result.stdout
    assert f"127.0.0.1:{port}" in result.stderr + result.stdout
