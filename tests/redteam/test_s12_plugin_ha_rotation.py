"""A plugin decrypts what another plugin of the same key sealed under a version it has not polled yet.

A control plane of several kube-apiservers runs one plugin beside each, all on one backend key.
After a rotation, the plugin that polls first reports ``<key>:v2`` and its apiserver writes Secrets
under it. The other plugins have not polled yet (up to poll_interval, 30 s by default) and refused
every Decrypt of such a seed without asking anyone: FAILED_PRECONDITION "key_id names version 2 but
the key's latest version is 1". Their apiservers could not read the Secrets just written through
another apiserver. Expected: a key_id beyond what the plugin has seen makes it poll the backend at
once (at most once a second), then the seed decrypts, and Status stays ok.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import grpc
import pytest

from kubekms.backend import Backend
from kubekms.devenv.kmsserver import KMSServer, Principal, kms_server
from kubekms.devenv.plugin import PluginProcess, kubekms_backend_settings
from kubekms.providers import BackendConfig, open_backend
from kubekms_plugin import BACKEND_ACTIONS
from kubekms_plugin.config import KekPolicy
from kubekms_plugin.keyring import MIN_CATCH_UP, BadCiphertext, ForeignKeyId, Keyring
from kubekms_plugin.metrics import PluginMetrics
from kubekms_plugin.v2 import api_pb2, api_pb2_grpc

ALIAS = "cluster/secrets"
SEED = bytes(range(32))


@pytest.fixture
def server(tmp_path: Path) -> Iterator[KMSServer]:
    principals = [Principal(name="plugin", actions=BACKEND_ACTIONS, keys=(ALIAS,))]
    with kms_server(tmp_path / "kms", principals=principals) as running:
        running.call("create_key", ALIAS)
        yield running


def stub(plugin: PluginProcess) -> api_pb2_grpc.KeyManagementServiceStub:
    return api_pb2_grpc.KeyManagementServiceStub(grpc.insecure_channel(plugin.endpoint))  # type: ignore[no-untyped-call]


def test_a_seed_of_a_version_this_plugin_has_not_polled_yet_decrypts(server: KMSServer, tmp_path: Path) -> None:
    config = {"backend": kubekms_backend_settings(server, "plugin"), "key": ALIAS, "poll_interval": "60s"}
    behind, ahead = PluginProcess(tmp_path / "behind", config), PluginProcess(tmp_path / "ahead", config)
    try:
        behind.start()
        assert stub(behind).Status(api_pb2.StatusRequest(), timeout=5).key_id.endswith(":v1")
        server.call("rotate_key", ALIAS)
        ahead.start()  # polls after the rotation: the first to see version 2
        announced = stub(ahead).Status(api_pb2.StatusRequest(), timeout=5)
        assert announced.key_id.endswith(":v2")
        sealed = stub(ahead).Encrypt(api_pb2.EncryptRequest(plaintext=SEED, uid="t"), timeout=10)
        assert sealed.key_id == announced.key_id
        request = api_pb2.DecryptRequest(
            ciphertext=sealed.ciphertext, key_id=sealed.key_id, annotations=dict(sealed.annotations), uid="t"
        )
        assert stub(behind).Decrypt(request, timeout=10).plaintext == SEED  # before its next poll (60 s)
        status = stub(behind).Status(api_pb2.StatusRequest(), timeout=5)
        assert (status.healthz, status.key_id) == ("ok", announced.key_id)
        # a version the key does not have is still refused, precisely
        future = api_pb2.DecryptRequest(
            ciphertext=sealed.ciphertext,
            key_id=sealed.key_id.rsplit(":v", 1)[0] + ":v9",
            annotations=dict(sealed.annotations),
            uid="t",
        )
        with pytest.raises(grpc.RpcError) as refused:
            stub(behind).Decrypt(future, timeout=10)
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "latest version is 2" in (refused.value.details() or "")
    finally:
        ahead.stop()
        behind.stop()


class CountedDescribes:
    """The local backend, counting describe_key calls (each one a poll)."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self.describes = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)

    async def describe_key(self, key_id: str) -> Any:
        self.describes += 1
        return await self._backend.describe_key(key_id)


async def test_decrypts_of_unseen_versions_poll_at_most_once_a_second(tmp_path: Path) -> None:
    backend = await open_backend(BackendConfig(provider="local", state_dir=tmp_path, init=True))
    try:
        await backend.create_key(ALIAS)
        counted = CountedDescribes(backend)
        now = [1000.0]
        keyring = Keyring(
            cast(Backend, counted), ALIAS, KekPolicy(), PluginMetrics(), backend_name="local", clock=lambda: now[0]
        )
        await keyring.refresh()
        keyring.announce()
        sealed = keyring.encrypt_now(SEED)
        assert sealed is not None and counted.describes == 1
        future = sealed.key_id.rsplit(":v", 1)[0] + ":v2"
        for _ in range(20):  # a burst naming a version the key does not have: one poll, then refusals
            with pytest.raises(ForeignKeyId, match="latest version is 1"):
                await keyring.decrypt(sealed.ciphertext, future, sealed.wrapped_kek)
        assert counted.describes == 2
        now[0] += MIN_CATCH_UP
        await backend.rotate_key(ALIAS)  # meanwhile another plugin saw version 2 and sealed under it
        with pytest.raises(BadCiphertext):  # polled: version 2 exists; this seal is bound to v1's key_id
            await keyring.decrypt(sealed.ciphertext, future, sealed.wrapped_kek)
        assert counted.describes == 3 and keyring.latest_version == 2 and keyring.health() == "ok"
    finally:
        await backend.close()
