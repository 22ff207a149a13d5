"""A socket path the plugin cannot bind is refused at start with one clear line, not a traceback.

A Unix socket path holds at most 107 bytes (sun_path); a longer ``socket`` (a deep hostPath) made
gRPC's bind fail and the plugin die with a Python traceback ending in ``RuntimeError: Failed to bind
to address unix:///...; set GRPC_VERBOSITY=debug``. A relative ``socket`` (``run/kms.sock``) became
``unix://run/kms.sock``, where gRPC reads ``run`` as an authority: the same traceback. Expected: a
relative path is taken from the working directory, as the OS would, and a path too long is a
ConfigError naming the limit; the CLI exits 2 with one log line.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from kubekms.devenv.processes import kubekms_argv
from kubekms_plugin.config import MAX_SOCKET_PATH, ConfigError, build_config

BACKEND = {"provider": "kubekms", "endpoint": "http://127.0.0.1:1"}


def test_a_socket_path_too_long_for_a_unix_socket_is_a_config_error() -> None:
    fits = Path("/run") / ("d" * (MAX_SOCKET_PATH - len("/run/") - len("/k.sock"))) / "k.sock"  # nothing is made
    assert len(str(fits)) == MAX_SOCKET_PATH
    assert build_config({"socket": str(fits), "key": "k", "backend": BACKEND}).socket == fits
    too_long = fits.with_name("kk.sock")
    with pytest.raises(ConfigError, match=f"socket: .* is {MAX_SOCKET_PATH + 1} bytes; .* at most {MAX_SOCKET_PATH}"):
        build_config({"socket": str(too_long), "key": "k", "backend": BACKEND})


def test_a_relative_socket_path_is_taken_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert build_config({"socket": "run/kms.sock", "key": "k", "backend": BACKEND}).socket == tmp_path / "run/kms.sock"


def test_the_plugin_refuses_a_long_socket_path_in_one_line(tmp_path: Path) -> None:
    socket = tmp_path / ("d" * 120) / "kms.sock"
    argv = [*kubekms_argv("plugin"), "--socket", str(socket), "--key", "k", "--provider", "kubekms"]
    done = subprocess.run(
        [*argv, "--endpoint", "http://127.0.0.1:1"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    lines = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    assert any("at most" in str(line.get("error")) for line in lines), done.stderr[-2000:]
