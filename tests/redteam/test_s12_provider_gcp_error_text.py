"""Provider ``gcp``: a Cloud KMS error message reaches callers bounded and with control characters escaped.

As tests/redteam/test_s12_provider_error_text.py for the REST and AWS providers: the provider put
the status message of a gRPC error into its KMSError as it came, and callers copy that into the
KMSKey's status and Events, logs and terminals (ESC sequences, newlines forging log lines, bidi
overrides). The kubekms server's Cloud KMS API never answers so, hence a gRPC server standing in
for it that refuses every call with such a message.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kubekms.errors import InvalidArgument
from kubekms.providers import BackendConfig, open_backend

HOSTILE = "\x1b[2J\x1b[31mforged\nlevel=INFO msg=ok\r\u202e" + "x" * 3000  # under gRPC's 8 KiB metadata bound


class RefuseEverything(grpc.GenericRpcHandler):
    def service(self, handler_call_details: Any) -> grpc.RpcMethodHandler[bytes, bytes]:
        async def refuse(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, HOSTILE)
            raise AssertionError("abort returns no answer")

        return grpc.unary_unary_rpc_method_handler(refuse)


@pytest.fixture
async def refusing_endpoint() -> AsyncIterator[str]:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((RefuseEverything(),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await server.stop(None)


def _service_account_file(directory: Path) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    path = directory / "sa.json"
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "p1",
                "private_key_id": "k1",
                "private_key": pem,
                "client_email": "kms@p1.iam.gserviceaccount.com",
                "client_id": "1",
                "token_uri": "https://oauth2.googleapis.com/token",
            }
        )
    )
    return path


async def test_a_cloud_kms_error_message_is_bounded_and_escaped(refusing_endpoint: str, tmp_path: Path) -> None:
    config = BackendConfig(
        provider="gcp",
        endpoint=refusing_endpoint,
        project_id="p1",
        region="global",
        key_ring="ring",
        credentials_file=_service_account_file(tmp_path),
    )
    backend = await open_backend(config)
    try:
        with pytest.raises(InvalidArgument) as refused:
            await backend.describe_key("some-key")
    finally:
        await backend.close()
    message = refused.value.message
    assert len(message) <= 1024, f"{len(message)} characters reached the caller"
    assert all(char.isprintable() for char in message), repr(message[:120])
    assert "forged" in message
