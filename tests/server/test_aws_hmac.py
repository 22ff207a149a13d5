"""HMAC keys through boto3 against a real kubekms server: GenerateMac, VerifyMac, and what they refuse."""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from typing import Any

import pytest
from aws_key_types_support import refusal
from aws_policy_support import boto_kms

from kubekms.devenv.kmsserver import kms_server


@pytest.fixture(scope="module")
def kms(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with kms_server(tmp_path_factory.mktemp("kms-hmac"), project_id="default") as running:
        yield boto_kms(running)


@pytest.mark.parametrize("bits", [224, 256, 384, 512])
def test_a_mac_verifies_and_any_change_is_refused(kms: Any, bits: int) -> None:
    key_id = kms.create_key(KeySpec=f"HMAC_{bits}", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]["KeyId"]
    algorithm = f"HMAC_SHA_{bits}"
    metadata = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert (metadata["KeySpec"], metadata["MacAlgorithms"]) == (f"HMAC_{bits}", [algorithm])
    made = kms.generate_mac(KeyId=key_id, Message=b"session 42", MacAlgorithm=algorithm)
    assert len(made["Mac"]) == bits // 8 and made["MacAlgorithm"] == algorithm
    again = kms.generate_mac(KeyId=key_id, Message=b"session 42", MacAlgorithm=algorithm)["Mac"]
    assert hmac.compare_digest(again, made["Mac"])  # deterministic under one key
    assert kms.verify_mac(KeyId=key_id, Message=b"session 42", Mac=made["Mac"], MacAlgorithm=algorithm)["MacValid"]
    tampered = bytes([made["Mac"][0] ^ 1]) + made["Mac"][1:]
    for message, mac in ((b"session 42", tampered), (b"session 43", made["Mac"])):
        assert refusal(kms.verify_mac, KeyId=key_id, Message=message, Mac=mac, MacAlgorithm=algorithm) == (
            "KMSInvalidMacException"
        )


def test_mac_keys_and_other_keys_refuse_each_others_operations(kms: Any) -> None:
    mac_key = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]["KeyId"]
    symmetric = kms.create_key()["KeyMetadata"]["KeyId"]
    usage = "InvalidKeyUsageException"
    assert refusal(kms.generate_mac, KeyId=mac_key, Message=b"m", MacAlgorithm="HMAC_SHA_384") == usage
    assert refusal(kms.generate_mac, KeyId=symmetric, Message=b"m", MacAlgorithm="HMAC_SHA_256") == usage
    assert refusal(kms.encrypt, KeyId=mac_key, Plaintext=b"m") == usage
    assert refusal(kms.generate_data_key, KeyId=mac_key, KeySpec="AES_256") == usage
    assert refusal(kms.sign, KeyId=mac_key, Message=b"m", SigningAlgorithm="ECDSA_SHA_256") == usage
    assert refusal(kms.create_key, KeySpec="HMAC_256", KeyUsage="SIGN_VERIFY") == usage
    assert refusal(kms.enable_key_rotation, KeyId=mac_key) == "UnsupportedOperationException"
