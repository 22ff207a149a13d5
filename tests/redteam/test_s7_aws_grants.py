"""boto3 against the AWS wire's CreateGrant: AWS's rules on a grant's operations and on retries by Name.

A grant's operations must suit its key (AWS's table of grant operations per key type), else
ValidationException: Sign on a symmetric key, GenerateDataKey on an RSA or signing key, Encrypt on
an HMAC key. A CreateGrant repeated with the same Name and identical parameters returns the grant
made first (the same GrantId), as AWS does, instead of a duplicate; a different request under that
Name makes a new grant.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from aws_refusal_support import refused

from kubekms.devenv.kmsserver import KMSServer, kms_server

BOB = "arn:aws:iam::default:user/bob"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    with kms_server(tmp_path_factory.mktemp("kms"), project_id="default") as running:
        yield running


@pytest.fixture(scope="module")
def kms(server: KMSServer) -> Any:
    return server.aws_client(validate=False)


KEYS = {
    "symmetric": {},
    "rsa": {"KeySpec": "RSA_2048", "KeyUsage": "ENCRYPT_DECRYPT"},
    "ecc": {"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"},
    "hmac": {"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"},
}
COMMON = ["CreateGrant", "RetireGrant", "DescribeKey"]
FITTING = {
    "symmetric": ["Encrypt", "Decrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "GenerateDataKeyPair",
                  "GenerateDataKeyPairWithoutPlaintext", "ReEncryptFrom", "ReEncryptTo"],
    "rsa": ["Encrypt", "Decrypt", "ReEncryptFrom", "ReEncryptTo", "GetPublicKey"],
    "ecc": ["Sign", "Verify", "GetPublicKey"],
    "hmac": ["GenerateMac", "VerifyMac"],
}  # fmt: skip
UNFITTING = {"symmetric": "Sign", "rsa": "GenerateDataKey", "ecc": "Decrypt", "hmac": "Encrypt"}


@pytest.mark.parametrize("kind", sorted(KEYS))
def test_grant_operations_must_suit_the_key(kms: Any, kind: str) -> None:
    key_id = kms.create_key(**KEYS[kind])["KeyMetadata"]["KeyId"]
    assert kms.create_grant(KeyId=key_id, GranteePrincipal=BOB, Operations=COMMON + FITTING[kind])["GrantId"]
    wrong = ["DescribeKey", UNFITTING[kind]]
    assert refused(lambda: kms.create_grant(KeyId=key_id, GranteePrincipal=BOB, Operations=wrong)) == (
        "ValidationException"
    )
    assert len(kms.list_grants(KeyId=key_id)["Grants"]) == 1


def test_a_retry_by_name_returns_the_first_grant(kms: Any) -> None:
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    request = {"KeyId": key_id, "GranteePrincipal": BOB, "Operations": ["Encrypt"], "Name": "app-writer",
               "Constraints": {"EncryptionContextSubset": {"app": "x"}}}  # fmt: skip
    first, again = kms.create_grant(**request), kms.create_grant(**request)
    assert again["GrantId"] == first["GrantId"]
    assert kms.create_grant(**{**request, "Operations": ["Decrypt"]})["GrantId"] != first["GrantId"]
    unnamed = {k: v for k, v in request.items() if k != "Name"}
    assert kms.create_grant(**unnamed)["GrantId"] != kms.create_grant(**unnamed)["GrantId"]
    assert len(kms.list_grants(KeyId=key_id)["Grants"]) == 4
