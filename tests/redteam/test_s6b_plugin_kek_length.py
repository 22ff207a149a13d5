"""The KMS v2 plugin over its real socket: a ``kek.kubekms.io`` annotation that unwraps to a key of the wrong size.

Anyone allowed create-datakey on the plugin's backend key (or encrypt-datakey) can wrap a "KEK" of
any length with the plugin's KEK additional data. The plugin handed the unwrapped bytes to AESGCM,
which raises ValueError for 8 or 64 bytes: Decrypt answered INTERNAL and logged a traceback. A
wrapped KEK that is not 32 bytes is a bad annotation: INVALID_ARGUMENT, nothing logged as a crash.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from kubekms.devenv.kmsserver import KMSServer, Principal, kms_server
from kubekms.devenv.plugin import PluginProcess, kubekms_backend_settings
from kubekms.plugin_ciphertext import KEK_AAD, KEK_ANNOTATION
from kubekms_plugin import BACKEND_ACTIONS
from kubekms_plugin.v2 import api_pb2, api_pb2_grpc

KEY = "plugin/s6b"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    principals = [Principal(name="plugin", actions=BACKEND_ACTIONS, keys=(KEY,))]
    with kms_server(tmp_path_factory.mktemp("kms"), principals=principals) as running:
        running.call("create_key", KEY)
        yield running


@pytest.fixture(scope="module")
def plugin(server: KMSServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PluginProcess]:
    settings = {"backend": kubekms_backend_settings(server, "plugin"), "key": KEY, "poll_interval": "1s"}
    process = PluginProcess(Path(tmp_path_factory.mktemp("plugin")), settings)
    process.start()
    yield process
    process.stop()


@pytest.mark.parametrize("length", [8, 33, 64])
def test_a_wrapped_kek_of_the_wrong_size_is_a_bad_annotation(
    server: KMSServer, plugin: PluginProcess, length: int
) -> None:
    with grpc.insecure_channel(plugin.endpoint) as channel:
        stub = api_pb2_grpc.KeyManagementServiceStub(channel)
        sealed = stub.Encrypt(api_pb2.EncryptRequest(plaintext=b"s" * 32, uid="u"), timeout=10)
        odd_kek = server.call("create_data_key", KEY, length=length, aad=KEK_AAD)  # as an admin of the backend
        request = api_pb2.DecryptRequest(ciphertext=sealed.ciphertext, uid="u", key_id=sealed.key_id,
                                         annotations={KEK_ANNOTATION: odd_kek.ciphertext})  # fmt: skip
        with pytest.raises(grpc.RpcError) as refused:
            stub.Decrypt(request, timeout=10)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, refused.value.details()
    assert "Traceback" not in plugin.log.read_text()
