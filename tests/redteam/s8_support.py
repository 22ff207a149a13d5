"""Shared by the session-8 red-team tests: a Cloud KMS server with its token endpoint, and raw REST calls."""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from google.auth import crypt
from google.auth import jwt as google_jwt

from kubekms.devenv.gcpserver import GcpServer, gcp_server
from kubekms.devenv.kmsserver import Principal

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
KMS_SCOPE = "https://www.googleapis.com/auth/cloudkms"


@contextlib.contextmanager
def gcp_with_token_endpoint(root: Path, project: str, principals: tuple[Principal, ...] = ()) -> Iterator[GcpServer]:
    """A Cloud KMS server (gRPC and REST) whose config sets gcp.token_uri (POST /token on the REST listener)."""
    with gcp_server(root, project_id=project, principals=principals) as running:
        running.server.stop()  # again with the token endpoint: the devenv config has none
        config_path = running.server.state_dir / "server.yaml"
        config = yaml.safe_load(config_path.read_text())
        config["gcp"]["token_uri"] = f"{running.rest_endpoint}/token"
        config_path.write_text(yaml.safe_dump(config))
        running.server.start()
        deadline = time.monotonic() + 30
        while True:  # the REST listener answers once it is up again
            with contextlib.suppress(OSError):
                rest(running, "GET", "/v1/projects/p/locations/global/keyRings", token="-")
                break
            if time.monotonic() > deadline:
                raise TimeoutError("the REST listener did not come back")
            time.sleep(0.05)
        yield running


def signed_jwt(gcp: GcpServer, principal: str = "admin", **claims: Any) -> str:
    """A JWT signed with ``principal``'s service-account key: iss/sub its email, 10 minutes, then ``claims``."""
    info = gcp.service_account_info(principal)
    now = int(time.time())
    payload = {"iss": info["client_email"], "sub": info["client_email"], "iat": now, "exp": now + 600, **claims}
    signer = crypt.RSASigner.from_service_account_info(info)  # type: ignore[no-untyped-call]  # google-auth
    token: bytes = google_jwt.encode(signer, payload)  # type: ignore[no-untyped-call]  # google-auth: unannotated
    return token.decode()


def rest(
    gcp: GcpServer,
    method: str,
    path: str,
    *,
    token: str,
    body: bytes | None = None,
    headers: Mapping[str, str] = {},
) -> tuple[int, Any]:
    """One REST call with ``authorization: Bearer <token>``: (HTTP status, the JSON answer or the raw text)."""
    request = urllib.request.Request(f"{gcp.rest_endpoint}{path}", data=body, method=method,
                                     headers={"Authorization": f"Bearer {token}", **headers})  # fmt: skip
    if body is not None:
        request.add_header("Content-Type", "application/json")
    return _send(request)


def token_post(gcp: GcpServer, form: Mapping[str, str]) -> tuple[int, Any]:
    """POST /token with a form body: (HTTP status, the JSON answer or the raw text)."""
    request = urllib.request.Request(f"{gcp.rest_endpoint}/token", data=urllib.parse.urlencode(form).encode())
    return _send(request)


def _send(request: urllib.request.Request) -> tuple[int, Any]:
    """(HTTP status, the JSON answer or the raw text) of one request, refusals included."""
    try:
        with urllib.request.urlopen(request, timeout=20) as answer:
            status, text = answer.status, answer.read()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text.decode("utf-8", "replace")
