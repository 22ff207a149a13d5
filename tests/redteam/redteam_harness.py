"""Shared helpers of the red-team tests: raw Cloud KMS calls (bytes the official client would never send)."""

from __future__ import annotations

import time
from typing import Any

import grpc
from google.auth import crypt
from google.auth import jwt as google_jwt

from kubekms.devenv.gcpserver import GcpServer

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
