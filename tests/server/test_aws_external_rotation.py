"""On-demand rotation of a key of imported material (Origin EXTERNAL), as AWS KMS now offers it.

AWS (RotateKeyOnDemand, ImportKeyMaterial ImportType, ListKeyRotations KeyMaterialState): new material imported
with ``ImportType: NEW_KEY_MATERIAL`` waits as PENDING_ROTATION; RotateKeyOnDemand makes it CURRENT, the old
material stays for Decrypt (NON_CURRENT). Without pending material the rotation is refused. Here a key of
imported material holds one material (a re-import must bring the same): this needs a pending material in the
keystore, so it is routed to the lead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from aws_key_types_support import refusal
from aws_policy_support import boto_kms
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from kubekms.devenv.kmsserver import kms_server

OAEP_SHA_256 = padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)


@pytest.fixture(scope="module")
def kms(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with kms_server(tmp_path_factory.mktemp("kms-external-rotation"), project_id="default") as running:
        yield boto_kms(running)


def _import(kms: Any, key_id: str, material: bytes, **fields: Any) -> None:
    parameters = kms.get_parameters_for_import(
        KeyId=key_id, WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048"
    )
    public = serialization.load_der_public_key(parameters["PublicKey"])
    assert isinstance(public, rsa.RSAPublicKey)
    kms.import_key_material(
        KeyId=key_id,
        ImportToken=parameters["ImportToken"],
        EncryptedKeyMaterial=public.encrypt(material, OAEP_SHA_256),
        **fields,
    )


@pytest.mark.xfail(
    strict=True,
    reason="routed to lead: the keystore holds one material per EXTERNAL key; AWS's ImportType NEW_KEY_MATERIAL "
    "needs a pending (PENDING_ROTATION) material that RotateKeyOnDemand makes current",
)
def test_new_material_imported_for_rotation_becomes_current_on_rotate_key_on_demand(kms: Any) -> None:
    key_id = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    _import(kms, key_id, os.urandom(32))
    before = kms.encrypt(KeyId=key_id, Plaintext=b"old")["CiphertextBlob"]
    _import(kms, key_id, os.urandom(32), ImportType="NEW_KEY_MATERIAL")
    states = [entry["KeyMaterialState"] for entry in kms.list_key_rotations(
        KeyId=key_id, IncludeKeyMaterial="ALL_KEY_MATERIAL")["Rotations"]]  # fmt: skip
    assert states == ["CURRENT", "PENDING_ROTATION"]
    kms.rotate_key_on_demand(KeyId=key_id)
    rotations = kms.list_key_rotations(KeyId=key_id, IncludeKeyMaterial="ALL_KEY_MATERIAL")["Rotations"]
    assert [entry["KeyMaterialState"] for entry in rotations] == ["NON_CURRENT", "CURRENT"]
    assert rotations[1]["RotationType"] == "ON_DEMAND"
    assert kms.decrypt(CiphertextBlob=before)["Plaintext"] == b"old"  # the old material still opens
    after = kms.encrypt(KeyId=key_id, Plaintext=b"new")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=after)["Plaintext"] == b"new"


def test_an_external_key_without_pending_material_does_not_rotate(kms: Any) -> None:
    key_id = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    _import(kms, key_id, os.urandom(32))
    assert refusal(kms.rotate_key_on_demand, KeyId=key_id) in (
        "UnsupportedOperationException",  # here today
        "KMSInvalidStateException",  # AWS's answer when no material is PENDING_ROTATION
    )
