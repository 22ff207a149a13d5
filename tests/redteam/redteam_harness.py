"""Shared helpers of the red-team tests: raw Cloud KMS calls (bytes the official client would never send)."""

from __future__ import annotations

import contextlib
import http.client
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
from google.auth import crypt
from google.auth import jwt as google_jwt
from google.cloud import kms_v1

from kubekms.devenv.gcpserver import GcpServer, gcp_server

SERVICE = "/google.cloud.kms.v1.KeyManagementService"
AUDIENCE = "https://cloudkms.googleapis.com/"


def bearer(gcp: GcpServer, principal: str = "admin", **claims: Any) -> str:
    """A self-signed service-account JWT of ``principal``, valid for 10 minutes unless ``claims`` say otherwise."""
    info = gcp.service_account_info(principal)
    now = int(time.time())
    payload = {"iss": info["client_email"], "sub": info["client_email"], "aud": AUDIENCE, "iat": now,
               "exp": now + 600, **claims}  # fmt: skip
    return google_jwt.encode(crypt.RSASigner.from_service_account_info(info), payload).decode()


def raw_call(gcp: GcpServer, method: str, body: bytes, token: str) -> tuple[grpc.StatusCode, bytes | str]:
    """One unary call with a hand-serialized request: (OK, the answer's bytes) or (its status code, details)."""
    with grpc.insecure_channel(gcp.endpoint) as channel:
        call = channel.unary_unary(f"{SERVICE}/{method}")
        try:
            answer: bytes = call(body, metadata=(("authorization", f"Bearer {token}"),), timeout=10)
        except grpc.RpcError as error:
            return error.code(), error.details() or ""
    return grpc.StatusCode.OK, answer


def message_call(gcp: GcpServer, method: str, request: Any) -> tuple[grpc.StatusCode, bytes | str]:
    """:func:`raw_call` of a proto-plus request message, as the admin."""
    return raw_call(gcp, method, type(request).serialize(request), bearer(gcp))


@contextlib.contextmanager
def with_crypto_key(root: Path, project: str) -> Iterator[GcpServer]:
    """A Cloud KMS server whose project holds key ring ``r`` with the ENCRYPT_DECRYPT crypto key ``k`` (version 1)."""
    location = f"projects/{project}/locations/global"
    with gcp_server(root, project_id=project) as running:
        ring = kms_v1.CreateKeyRingRequest(parent=location, key_ring_id="r")
        assert message_call(running, "CreateKeyRing", ring)[0] is grpc.StatusCode.OK
        purpose = kms_v1.CryptoKey.CryptoKeyPurpose.ENCRYPT_DECRYPT
        key = kms_v1.CreateCryptoKeyRequest(parent=f"{location}/keyRings/r", crypto_key_id="k",
                                            crypto_key=kms_v1.CryptoKey(purpose=purpose))  # fmt: skip
        assert message_call(running, "CreateCryptoKey", key)[0] is grpc.StatusCode.OK
        yield running


def rest_call(gcp: GcpServer, method: str, path: str, body: bytes | None = None) -> tuple[int, dict[str, object]]:
    """One call of the Cloud KMS REST mapping as admin, over a raw connection (paths sent exactly as given)."""
    connection = http.client.HTTPConnection(gcp.rest_endpoint.removeprefix("http://"), timeout=10)
    try:
        headers = {"Authorization": f"Bearer {bearer(gcp)}", "Content-Type": "application/json"}
        connection.request(method, path, body=body, headers=headers)
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read())
    finally:
        connection.close()
