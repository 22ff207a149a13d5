"""A key policy applies on the Cloud KMS wire too (README: "A policy applies on every wire"): an explicit Deny
put on a version's keystore key through the AWS wire stops that principal's Encrypt/Decrypt over Cloud KMS,
and a policy that defers to the account leaves the principals file's key list (by resource name) in charge."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.cloud import kms_v1
from redteam_harness import bearer, raw_call

from kubekms.devenv.gcpserver import GcpServer, gcp_server
from kubekms.devenv.kmsserver import Principal

PROJECT = "proj-policy"
LOCATION = f"projects/{PROJECT}/locations/global"
KEY = f"{LOCATION}/keyRings/r/cryptoKeys/k"
APP = Principal("app", actions=("encrypt-datakey", "decrypt-datakey", "describe-key"), keys=(KEY,),
                projects=(PROJECT,))  # fmt: skip
OWNER = Principal("owner", projects=(PROJECT,))  # its AWS account is the project


def _call(gcp: GcpServer, principal: str, method: str, request: Any) -> tuple[grpc.StatusCode, Any]:
    """One call of ``method`` as ``principal``; its status and, when OK, the answer."""
    code, answer = raw_call(gcp, method, type(request).serialize(request), bearer(gcp, principal))
    response = getattr(kms_v1, f"{method}Response", None)
    return code, response.deserialize(answer) if response is not None and isinstance(answer, bytes) else None


@pytest.fixture(scope="module")
def gcp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcpServer]:
    with gcp_server(tmp_path_factory.mktemp("red-policy"), principals=(APP, OWNER), project_id=PROJECT) as running:
        yield running


def _policy(*statements: dict[str, object]) -> str:
    owner = {"Sid": "owner", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{PROJECT}:user/owner"},
             "Action": "kms:*", "Resource": "*"}  # fmt: skip
    return json.dumps({"Version": "2012-10-17", "Statement": [owner, *statements]})


def test_a_key_policy_deny_applies_on_the_cloud_kms_wire(gcp: GcpServer) -> None:
    purpose = kms_v1.CryptoKey.CryptoKeyPurpose.ENCRYPT_DECRYPT
    ok = grpc.StatusCode.OK
    assert _call(gcp, "admin", "CreateKeyRing", kms_v1.CreateKeyRingRequest(parent=LOCATION, key_ring_id="r"))[0] is ok
    created = kms_v1.CreateCryptoKeyRequest(parent=f"{LOCATION}/keyRings/r", crypto_key_id="k",
                                            crypto_key=kms_v1.CryptoKey(purpose=purpose))  # fmt: skip
    assert _call(gcp, "admin", "CreateCryptoKey", created)[0] is ok
    code, answer = _call(gcp, "app", "Encrypt", kms_v1.EncryptRequest(name=KEY, plaintext=b"before"))
    assert code is ok
    decrypt = kms_v1.DecryptRequest(name=KEY, ciphertext=answer.ciphertext)
    encrypt = kms_v1.EncryptRequest(name=KEY, plaintext=b"after")
    get_version = kms_v1.GetCryptoKeyVersionRequest(name=f"{KEY}/cryptoKeyVersions/1")
    aws = gcp.server.aws_client("owner", region="us-east-1", max_attempts=None)
    version_key = aws.describe_key(KeyId="alias/gcp/global/r/k/1")["KeyMetadata"]["KeyId"]

    deny_app = {"Sid": "no-app", "Effect": "Deny", "Principal": {"AWS": f"arn:aws:iam::{PROJECT}:user/app"},
                "Action": "kms:*", "Resource": "*"}  # fmt: skip
    aws.put_key_policy(KeyId=version_key, PolicyName="default", Policy=_policy(deny_app))
    denied = grpc.StatusCode.PERMISSION_DENIED
    assert _call(gcp, "app", "Decrypt", decrypt)[0] is denied
    assert _call(gcp, "app", "Encrypt", encrypt)[0] is denied
    assert _call(gcp, "app", "GetCryptoKeyVersion", get_version)[0] is denied

    account = {"Sid": "account", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{PROJECT}:root"},
               "Action": "kms:*", "Resource": "*"}  # fmt: skip
    aws.put_key_policy(KeyId=version_key, PolicyName="default", Policy=_policy(account))
    code, answer = _call(gcp, "app", "Decrypt", decrypt)
    assert code is ok and answer.plaintext == b"before"
    assert _call(gcp, "app", "Encrypt", encrypt)[0] is ok
