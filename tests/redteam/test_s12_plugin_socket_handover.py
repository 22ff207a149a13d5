"""A plugin that stops while a new one takes over its socket path must not remove the new one's socket.

On SIGTERM the plugin stops listening at once, drains its in-flight calls (up to drain_timeout) and
then removed the socket path, whatever was at it by then. Meanwhile its successor (a DaemonSet pod
rolled with maxSurge, a restarted static pod, a supervisor that starts the new process at the old
one's stop) found the path refusing connections, took it for stale and bound its own socket there.
When the old plugin's drain ended it unlinked the successor's socket: kube-apiserver could no
longer connect to a plugin that was running and healthy, until that was restarted too.
Expected: a stopping plugin removes the socket path only while it is still its own socket.
"""

from __future__ import annotations

import os
import signal
import socket
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
import yaml

from kubekms.devenv.kmsserver import KMSServer, Principal, kms_server
from kubekms.devenv.plugin import PluginProcess, kubekms_backend_settings
from kubekms.devenv.processes import wait_for
from kubekms_plugin import BACKEND_ACTIONS
from kubekms_plugin.v2 import api_pb2, api_pb2_grpc

ALIAS = "cluster/secrets"
SEED = bytes(range(32))
MISSES = 'kubekms_plugin_kek_cache_total{result="miss"}'


@pytest.fixture
def server(tmp_path: Path) -> Iterator[KMSServer]:
    principals = [Principal(name="plugin", actions=BACKEND_ACTIONS, keys=(ALIAS,))]
    with kms_server(tmp_path / "kms", principals=principals) as running:
        running.call("create_key", ALIAS)
        yield running


def settings(server: KMSServer, **more: object) -> dict[str, object]:
    return {"backend": kubekms_backend_settings(server, "plugin"), "key": ALIAS, "poll_interval": "1s", **more}


def stub(endpoint: str) -> api_pb2_grpc.KeyManagementServiceStub:
    return api_pb2_grpc.KeyManagementServiceStub(grpc.insecure_channel(endpoint))  # type: ignore[no-untyped-call]


def cache_misses(plugin: PluginProcess) -> float:
    with urllib.request.urlopen(f"{plugin.health_url}/metrics", timeout=5) as answer:
        lines = answer.read().decode().splitlines()
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith(MISSES))


def pid_of(plugin: PluginProcess) -> int:
    process = plugin._process.process if plugin._process is not None else None  # PluginProcess has no public pid
    assert process is not None
    return process.pid


def refuses_connections(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        return True
    finally:
        probe.close()
    return False


def test_a_stopping_plugin_leaves_its_successors_socket_in_place(server: KMSServer, tmp_path: Path) -> None:
    old = PluginProcess(tmp_path / "old", settings(server, drain_timeout="30s"))
    sealer = PluginProcess(tmp_path / "sealer", settings(server))
    new = PluginProcess(tmp_path / "new", settings(server))
    new.socket = old.socket  # the successor serves at the same path
    config = yaml.safe_load(new.config_path.read_text())
    new.config_path.write_text(yaml.safe_dump({**config, "socket": str(old.socket)}))
    try:
        old.start()
        sealer.start()
        # sealed under the sealer's KEK, which the old plugin has never seen: its Decrypt needs the backend
        sealed = stub(sealer.endpoint).Encrypt(api_pb2.EncryptRequest(plaintext=SEED, uid="t"), timeout=10)
        request = api_pb2.DecryptRequest(
            ciphertext=sealed.ciphertext, key_id=sealed.key_id, annotations=dict(sealed.annotations), uid="t"
        )
        assert server.pid is not None
        with ThreadPoolExecutor(1) as caller:
            os.kill(server.pid, signal.SIGSTOP)  # the backend stops answering: the Decrypt stays in flight
            try:
                in_flight = caller.submit(stub(old.endpoint).Decrypt, request, timeout=20)
                wait_for(lambda: cache_misses(old) >= 1, 10, "the old plugin's Decrypt waiting for the backend")
                os.kill(pid_of(old), signal.SIGTERM)  # it drains that call before it exits
                wait_for(lambda: refuses_connections(old.socket), 10, "the old plugin to stop listening")
                assert old.running
                new.start(wait_healthy=False)  # finds a socket nobody listens on: stale, replaced
                assert old.running  # still draining
            finally:
                os.kill(server.pid, signal.SIGCONT)
            assert in_flight.result(timeout=20).plaintext == SEED  # drained: answered before the exit
        wait_for(lambda: not old.running, 20, "the old plugin to exit")
        assert old.socket.exists(), "the old plugin removed its successor's socket at its exit"
        wait_for(new.healthy, 20, "the new plugin healthy")
        assert stub(new.endpoint).Status(api_pb2.StatusRequest(), timeout=5).healthz == "ok"
    finally:
        for plugin in (new, sealer, old):
            plugin.stop()
