"""Shared by the session-9 red-team tests: signed raw requests on the v1.0 and AWS wires (bodies no SDK sends)."""

from __future__ import annotations

import json
from typing import Any

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import requests
import yaml

from kubekms.devenv.kmsserver import KMSServer
from kubekms.providers import Credentials
from kubekms.wire.signing import sign_headers


def v1_call(server: KMSServer, principal: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """One v1.0 request signed as ``principal`` (SDK-HMAC-SHA256), ``body`` sent as JSON: (status, JSON answer)."""
    data = b"" if body is None else json.dumps(body).encode()
    url = f"{server.endpoint}{path}"
    headers = sign_headers(method, url, {"Content-Type": "application/json"}, data,
                           Credentials.from_file(server.credentials_file(principal)))  # fmt: skip
    answer = requests.request(method, url, data=data, headers=headers, timeout=20)
    try:
        return answer.status_code, answer.json()
    except ValueError:
        return answer.status_code, answer.text


def aws_call(server: KMSServer, principal: str, target: str, body: dict[str, Any]) -> tuple[int, Any]:
    """One AWS wire request (``TrentService.<target>``) signed with SigV4 as ``principal``, exactly ``body``."""
    credentials = yaml.safe_load(server.credentials_file(principal).read_text())
    data = json.dumps(body).encode()
    request = botocore.awsrequest.AWSRequest(
        method="POST", url=f"{server.endpoint}/", data=data,
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": f"TrentService.{target}"},
    )  # fmt: skip
    signer = botocore.auth.SigV4Auth(
        botocore.credentials.Credentials(credentials["access_key"], credentials["secret_key"]), "kms", "eu-west-1"
    )
    signer.add_auth(request)
    answer = requests.post(request.url, data=data, headers=dict(request.headers.items()), timeout=20)
    try:
        return answer.status_code, answer.json()
    except ValueError:
        return answer.status_code, answer.text
