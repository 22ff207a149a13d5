"""The KMS v2 plugin with provider ``aws``: real plugin processes, real gRPC over their socket, our AWS wire.

The plugin's principal has the plugin's permissions (BACKEND_ACTIONS), among them the
rotation-status read (kms:ListKeyRotations on AWS), so its key_id follows rotations.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from kubekms.devenv.kmsserver import KMSServer, Principal, kms_server
from kubekms.devenv.plugin import PluginProcess
from kubekms.providers import BackendConfig, open_backend
from kubekms_plugin import BACKEND_ACTIONS
from kubekms_plugin.v2 import api_pb2, api_pb2_grpc

REGION = "eu-west-1"
ALIAS = "aws-plugin-key"
SEED = bytes(range(32))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    plugin = Principal("plugin", actions=BACKEND_ACTIONS, keys=(ALIAS,), projects=("default",))
    with kms_server(tmp_path_factory.mktemp("kms"), principals=(plugin,)) as running:
        yield running


def admin(server: KMSServer, operation: str, *args: object) -> Any:
    async def run() -> Any:
        config = BackendConfig(
            provider="aws", endpoint=server.endpoint, region=REGION, credentials_file=server.credentials_file("admin")
        )
        backend = await open_backend(config)
        try:
            return await getattr(backend, operation)(*args)
        finally:
            await backend.close()

    return asyncio.run(run())


def start_plugin(server: KMSServer, workdir: Path) -> PluginProcess:
    backend = {
        "provider": "aws",
        "endpoint": server.endpoint,
        "region": REGION,
        "credentials_file": str(server.credentials_file("plugin")),
    }
    process = PluginProcess(workdir, {"backend": backend, "key": ALIAS, "poll_interval": "1s"})
    process.start()
    return process


def call(plugin: PluginProcess, method: str, request: Any) -> Any:
    with grpc.insecure_channel(plugin.endpoint) as channel:
        return getattr(api_pb2_grpc.KeyManagementServiceStub(channel), method)(request, timeout=10)


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f}s waiting for {what}"
        time.sleep(0.1)  # polling interval of a condition with a deadline


def test_plugin_on_the_aws_wire(server: KMSServer, tmp_path: Path) -> None:
    key_id = admin(server, "create_key", ALIAS).key_id
    plugin = start_plugin(server, tmp_path / "warm")
    try:
        status = call(plugin, "Status", api_pb2.StatusRequest())
        assert (status.healthz, status.key_id) == ("ok", f"{key_id}:v1")
        before = call(plugin, "Encrypt", api_pb2.EncryptRequest(plaintext=SEED, uid="a"))
        assert before.key_id == f"{key_id}:v1" and SEED not in before.ciphertext

        admin(server, "rotate_key", ALIAS)
        wait_for(lambda: call(plugin, "Status", api_pb2.StatusRequest()).key_id == f"{key_id}:v2", 20, "v2")
        after = call(plugin, "Encrypt", api_pb2.EncryptRequest(plaintext=SEED, uid="b"))
        assert after.key_id == f"{key_id}:v2" and dict(after.annotations) != dict(before.annotations)
    finally:
        plugin.stop()

    cold = start_plugin(server, tmp_path / "cold")  # no cached KEKs: both unwrap through the AWS wire
    try:
        for sealed in (before, after):
            request = api_pb2.DecryptRequest(
                ciphertext=sealed.ciphertext, key_id=sealed.key_id, annotations=dict(sealed.annotations), uid="c"
            )
            assert call(cold, "Decrypt", request).plaintext == SEED
    finally:
        cold.stop()
    audit = Path(server.audit_log)
    wait_for(lambda: '"operation":"aws:Decrypt"' in audit.read_text(), 10, "the plugin's Decrypt in the audit log")
