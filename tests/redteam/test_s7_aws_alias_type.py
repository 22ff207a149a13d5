"""UpdateAlias moves an alias only to a key of the same type and usage, as AWS (ValidationException).

AWS: "The current and new KMS key must be the same type (both symmetric or both asymmetric or both
HMAC), and they must have the same key usage. This restriction prevents errors in code that uses
aliases." An alias an application encrypts with, moved to an RSA signing key, would break it (or,
moved to an RSA encryption key, make its Encrypt calls fail or change meaning).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import botocore.exceptions
import pytest

from kubekms.devenv.kmsserver import kms_server


@pytest.fixture(scope="module")
def kms(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with kms_server(tmp_path_factory.mktemp("kms"), project_id="default") as running:
        yield running.aws_client()


def test_an_alias_moves_only_to_a_key_of_its_type_and_usage(kms: Any) -> None:
    def new(**spec: str) -> str:
        return str(kms.create_key(**spec)["KeyMetadata"]["KeyId"])

    symmetric, other_symmetric = new(), new()
    rsa_encrypt, rsa_sign = (
        new(KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT"),
        new(KeySpec="RSA_3072", KeyUsage="SIGN_VERIFY"),
    )
    ecc_sign, hmac = (
        new(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY"),
        new(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC"),
    )
    kms.create_alias(AliasName="alias/app", TargetKeyId=symmetric)
    for wrong in (rsa_encrypt, rsa_sign, hmac):
        with pytest.raises(botocore.exceptions.ClientError) as raised:
            kms.update_alias(AliasName="alias/app", TargetKeyId=wrong)
        assert raised.value.response["Error"]["Code"] == "ValidationException"
        assert kms.describe_key(KeyId="alias/app")["KeyMetadata"]["KeyId"] == symmetric
    kms.update_alias(AliasName="alias/app", TargetKeyId=other_symmetric)
    assert kms.describe_key(KeyId="alias/app")["KeyMetadata"]["KeyId"] == other_symmetric

    kms.create_alias(AliasName="alias/signer", TargetKeyId=rsa_sign)
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        kms.update_alias(AliasName="alias/signer", TargetKeyId=rsa_encrypt)  # asymmetric both, usage differs
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    kms.update_alias(AliasName="alias/signer", TargetKeyId=ecc_sign)  # both asymmetric, both SIGN_VERIFY
    assert kms.describe_key(KeyId="alias/signer")["KeyMetadata"]["KeyId"] == ecc_sign
