"""The rotation operations on asymmetric and HMAC keys through boto3 against a real kubekms server, as AWS answers:
EnableKeyRotation, DisableKeyRotation, RotateKeyOnDemand and ListKeyRotations are UnsupportedOperationException,
GetKeyRotationStatus answers KeyRotationEnabled false (AWS's answer for them since 2026-04)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from aws_key_types_support import refusal
from aws_policy_support import boto_kms

from kubekms.devenv.kmsserver import kms_server

UNSUPPORTED = "UnsupportedOperationException"
KEY_TYPES = [("RSA_2048", "SIGN_VERIFY"), ("RSA_3072", "ENCRYPT_DECRYPT"), ("ECC_NIST_P256", "SIGN_VERIFY"),
             ("HMAC_256", "GENERATE_VERIFY_MAC")]  # fmt: skip


@pytest.fixture(scope="module")
def kms(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with kms_server(tmp_path_factory.mktemp("kms-rotation-types"), project_id="default") as running:
        yield boto_kms(running)


@pytest.mark.parametrize(("spec", "usage"), KEY_TYPES)
def test_rotation_operations_on_a_key_that_does_not_rotate(kms: Any, spec: str, usage: str) -> None:
    key_id = kms.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]["KeyId"]
    assert refusal(kms.list_key_rotations, KeyId=key_id) == UNSUPPORTED
    assert refusal(kms.list_key_rotations, KeyId=key_id, IncludeKeyMaterial="ALL_KEY_MATERIAL") == UNSUPPORTED
    assert refusal(kms.enable_key_rotation, KeyId=key_id) == UNSUPPORTED
    assert refusal(kms.disable_key_rotation, KeyId=key_id) == UNSUPPORTED
    assert refusal(kms.rotate_key_on_demand, KeyId=key_id) == UNSUPPORTED
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is False


def test_a_symmetric_key_lists_its_rotations(kms: Any) -> None:
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    assert kms.list_key_rotations(KeyId=key_id)["Rotations"] == []
    kms.rotate_key_on_demand(KeyId=key_id)
    (rotation,) = kms.list_key_rotations(KeyId=key_id)["Rotations"]
    assert (rotation["RotationType"], rotation["KeyMaterialState"]) == ("ON_DEMAND", "CURRENT")
