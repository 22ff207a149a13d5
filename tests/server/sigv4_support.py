"""Requests signed by botocore's own SigV4 signer, for the verifier's tests."""

from __future__ import annotations

import json

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials
from multidict import CIMultiDict

HOST = "127.0.0.1:8443"
SECRETS = {"AKALICE": "alice-secret"}
BODY = json.dumps({"KeyId": "alias/app", "NumberOfBytes": 32}).encode()


def signed(
    body: bytes = BODY, *, secret: str = "alice-secret", region: str = "eu-west-1", service: str = "kms"
) -> CIMultiDict[str]:
    request = AWSRequest(
        method="POST",
        url=f"http://{HOST}/",
        data=body,
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "TrentService.GenerateDataKey"},
    )
    SigV4Auth(BotoCredentials("AKALICE", secret), service, region).add_auth(request)
    headers = CIMultiDict(request.headers.items())
    headers["Host"] = HOST
    return headers
