"""On-demand rotation of a key of imported material (Origin EXTERNAL), as AWS KMS now offers it, and the request
members that come with it (ImportType, KeyMaterialId).

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


def test_new_key_material_is_the_first_import_only(kms: Any) -> None:
    key_id = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    _import(kms, key_id, os.urandom(32), ImportType="NEW_KEY_MATERIAL")  # AWS's default for a first import
    sealed = kms.encrypt(KeyId=key_id, Plaintext=b"first")["CiphertextBlob"]
    with pytest.raises(kms.exceptions.UnsupportedOperationException):  # not "incorrect material": not offered
        _import(kms, key_id, os.urandom(32), ImportType="NEW_KEY_MATERIAL")
    with pytest.raises(kms.exceptions.ClientError) as raised:
        _import(kms, key_id, os.urandom(32), ImportType="ROTATE_PLEASE")
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert kms.decrypt(CiphertextBlob=sealed)["Plaintext"] == b"first"


def test_a_key_material_id_names_no_material_here(kms: Any) -> None:
    """This server names no material: an id is refused, not ignored (DeleteImportedKeyMaterial would have deleted
    the key's only material whatever the id)."""
    key_id = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    material = os.urandom(32)
    _import(kms, key_id, material)
    some_id = "a" * 64
    for call, fields in (
        (kms.delete_imported_key_material, {"KeyId": key_id, "KeyMaterialId": some_id}),
        (_import, {"kms": kms, "key_id": key_id, "material": material, "KeyMaterialId": some_id}),
    ):
        with pytest.raises(kms.exceptions.ClientError) as raised:
            call(**fields)
        assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"


def test_an_external_key_store_key_id_is_refused(kms: Any) -> None:
    before = len(kms.list_keys(Limit=1000)["Keys"])
    with pytest.raises(kms.exceptions.ClientError) as raised:
        kms.create_key(XksKeyId="ext-key-1")
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert len(kms.list_keys(Limit=1000)["Keys"]) == before
