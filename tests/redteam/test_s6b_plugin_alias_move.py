"""The KMS v2 plugin configured with an alias, when the alias comes to name another key.

The plugin resolves its configured key (``key: cluster/secrets``) at every poll. When that alias is
moved to another backend key (delete-alias + create-alias, e.g. a KMSKey's spec.aliases edited),
the keyring took the new key's id but kept the old key's KEK: Status and Encrypt went on reporting
the old key_id, while Decrypt refused every key_id of the old key — also for Secrets it had just
encrypted, also with the KEK in its cache ("was not issued by this plugin"). After the apiserver's
DEK cache misses (a restart), no Secret is readable. Expected: what the plugin encrypted it can
decrypt, and Status never reports a key_id that its own Decrypt refuses.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from kubekms.devenv.kmsserver import KMSServer, Principal, kms_server
from kubekms.devenv.plugin import PluginProcess, kubekms_backend_settings
from kubekms.devenv.processes import wait_for
from kubekms_plugin import BACKEND_ACTIONS
from kubekms_plugin.v2 import api_pb2, api_pb2_grpc

ALIAS = "cluster/secrets"
POLLS = 'kubekms_plugin_backend_calls_total{operation="describe-key",result="ok"}'


@pytest.fixture
def server(tmp_path: Path) -> Iterator[KMSServer]:
    principals = [Principal(name="plugin", actions=BACKEND_ACTIONS, keys=("*",))]
    with kms_server(tmp_path / "kms", principals=principals) as running:
        yield running


def polls(plugin: PluginProcess) -> float:
    with urllib.request.urlopen(f"{plugin.health_url}/metrics", timeout=2) as answer:
        lines = answer.read().decode().splitlines()
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith(POLLS))


def test_data_encrypted_before_the_alias_moved_still_decrypts(server: KMSServer, tmp_path: Path) -> None:
    first, second = server.call("create_key", "key-one"), server.call("create_key", "key-two")
    server.call("create_alias", first.key_id, ALIAS)
    settings = {"backend": kubekms_backend_settings(server, "plugin"), "key": ALIAS, "poll_interval": "1s"}
    plugin = PluginProcess(tmp_path / "plugin", settings)
    plugin.start()
    try:
        with grpc.insecure_channel(plugin.endpoint) as channel:
            stub = api_pb2_grpc.KeyManagementServiceStub(channel)
            sealed = stub.Encrypt(api_pb2.EncryptRequest(plaintext=b"s" * 32, uid="before"), timeout=10)
            server.call("delete_alias", first.key_id, ALIAS)
            server.call("create_alias", second.key_id, ALIAS)
            seen = polls(plugin)
            wait_for(lambda: polls(plugin) >= seen + 2, 15, "two backend polls after the alias moved")
            request = api_pb2.DecryptRequest(ciphertext=sealed.ciphertext, uid="after", key_id=sealed.key_id,
                                             annotations=dict(sealed.annotations))  # fmt: skip
            assert stub.Decrypt(request, timeout=10).plaintext == b"s" * 32
            reported = stub.Status(api_pb2.StatusRequest(), timeout=10).key_id
            assert reported.startswith(f"{second.key_id}:"), reported  # new Secrets go under the alias's new key
            fresh = stub.Encrypt(api_pb2.EncryptRequest(plaintext=b"t" * 32, uid="new"), timeout=10)
            assert fresh.key_id == reported
            again = api_pb2.DecryptRequest(ciphertext=fresh.ciphertext, uid="new", key_id=fresh.key_id,
                                           annotations=dict(fresh.annotations))  # fmt: skip
            assert stub.Decrypt(again, timeout=10).plaintext == b"t" * 32
    finally:
        plugin.stop()
    restarted = PluginProcess(tmp_path / "restarted", settings)  # no memory of the old key: the backend decides
    restarted.start()
    try:
        with grpc.insecure_channel(restarted.endpoint) as channel:
            stub = api_pb2_grpc.KeyManagementServiceStub(channel)
            assert stub.Decrypt(request, timeout=10).plaintext == b"s" * 32
    finally:
        restarted.stop()
