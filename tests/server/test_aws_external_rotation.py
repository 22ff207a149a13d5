"""On-demand rotation of a key of imported material (Origin EXTERNAL), as AWS KMS now offers it, and the request
members that come with it (ImportType, KeyMaterialId).

AWS (RotateKeyOnDemand, ImportKeyMaterial ImportType, ListKeyRotations KeyMaterialState): new material imported
with ``ImportType: NEW_KEY_MATERIAL`` waits as PENDING_ROTATION; RotateKeyOnDemand makes it CURRENT, the old
material stays for Decrypt (NON_CURRENT). Without pending material the rotation is refused. The keystore holds
each material as a key version (its digest kept for re-imports); the staged one is pending until the rotation.
Materials are not named (KeyMaterialId is refused) and the key's expiry is one for all its materials.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_key_types_support import refusal
from aws_policy_support import boto_kms
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from kubekms.backend import ORIGIN_EXTERNAL
from kubekms.devenv.kmsserver import kms_server
from kubekms.errors import InvalidArgument, Reason
from kubekms.keystore import Keystore

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
    # AWS's answer when no material is PENDING_ROTATION
    assert refusal(kms.rotate_key_on_demand, KeyId=key_id) == "KMSInvalidStateException"
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
    assert kms.list_key_rotations(KeyId=key_id)["Rotations"] == []


def _states(kms: Any, key_id: str, include: str = "ALL_KEY_MATERIAL") -> list[str]:
    rotations = kms.list_key_rotations(KeyId=key_id, IncludeKeyMaterial=include)["Rotations"]
    return [entry["KeyMaterialState"] for entry in rotations]


def test_new_key_material_is_staged_one_at_a_time(kms: Any) -> None:
    key_id = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    first, staged = os.urandom(32), os.urandom(32)
    _import(kms, key_id, first, ImportType="NEW_KEY_MATERIAL")  # AWS's default for a first import: it is current
    sealed = kms.encrypt(KeyId=key_id, Plaintext=b"first")["CiphertextBlob"]
    assert _states(kms, key_id) == ["CURRENT"]
    with pytest.raises(kms.exceptions.IncorrectKeyMaterialException):  # the key's own material is no new material
        _import(kms, key_id, first, ImportType="NEW_KEY_MATERIAL")
    _import(kms, key_id, staged, ImportType="NEW_KEY_MATERIAL")
    assert _states(kms, key_id) == ["CURRENT", "PENDING_ROTATION"]
    assert _states(kms, key_id, "ROTATIONS_ONLY") == []  # no rotation happened yet
    with pytest.raises(kms.exceptions.KMSInvalidStateException):  # one pending material at a time
        _import(kms, key_id, os.urandom(32), ImportType="NEW_KEY_MATERIAL")
    # staged material is not used before the rotation: encryption stays under the first
    assert kms.decrypt(CiphertextBlob=kms.encrypt(KeyId=key_id, Plaintext=b"x")["CiphertextBlob"])["Plaintext"] == b"x"
    _import(kms, key_id, first)  # EXISTING_KEY_MATERIAL, the default: the current material again is taken
    with pytest.raises(kms.exceptions.ClientError) as raised:
        _import(kms, key_id, os.urandom(32), ImportType="ROTATE_PLEASE")
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert kms.decrypt(CiphertextBlob=sealed)["Plaintext"] == b"first"


def test_staged_material_takes_no_expiry_of_its_own(kms: Any) -> None:
    key_id = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    _import(kms, key_id, os.urandom(32))
    with pytest.raises(kms.exceptions.UnsupportedOperationException):
        _import(kms, key_id, os.urandom(32), ImportType="NEW_KEY_MATERIAL", ExpirationModel="KEY_MATERIAL_EXPIRES",
                ValidTo=time.time() + 86400)  # fmt: skip
    assert _states(kms, key_id) == ["CURRENT"]


def test_after_a_deletion_every_material_comes_back_before_the_key_works(kms: Any) -> None:
    """AWS: a key is usable only while all its materials are imported; each is re-imported as EXISTING material."""
    key_id = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    first, second = os.urandom(32), os.urandom(32)
    _import(kms, key_id, first)
    old = kms.encrypt(KeyId=key_id, Plaintext=b"under first")["CiphertextBlob"]
    _import(kms, key_id, second, ImportType="NEW_KEY_MATERIAL")
    kms.rotate_key_on_demand(KeyId=key_id)
    new = kms.encrypt(KeyId=key_id, Plaintext=b"under second")["CiphertextBlob"]
    kms.delete_imported_key_material(KeyId=key_id)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingImport"
    with pytest.raises(kms.exceptions.IncorrectKeyMaterialException):
        _import(kms, key_id, os.urandom(32))  # a stranger's material
    _import(kms, key_id, second)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingImport"  # the first is missing
    _import(kms, key_id, first)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"
    assert kms.decrypt(CiphertextBlob=old)["Plaintext"] == b"under first"
    assert kms.decrypt(CiphertextBlob=new)["Plaintext"] == b"under second"
    assert _states(kms, key_id) == ["NON_CURRENT", "CURRENT"]


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


def _store_import(store: Keystore, key_id: str, material: bytes, **options: Any) -> None:
    parameters = store.get_parameters_for_import(
        key_id, wrapping_algorithm="RSAES_OAEP_SHA_256", wrapping_key_spec="RSA_2048"
    )
    public = serialization.load_der_public_key(parameters.public_key)
    assert isinstance(public, rsa.RSAPublicKey)
    store.import_key_material(key_id, parameters.import_token, public.encrypt(material, OAEP_SHA_256), **options)


def test_a_material_imported_before_the_schema_knew_materials_is_still_the_only_one_taken(tmp_path: Path) -> None:
    """Schema 8 takes each key's material digest (keys.material_digest) as its version 1's: a keystore whose key
    got its material under schema 7 still refuses any other material as a re-import after the upgrade."""
    directory, material = tmp_path / "ks", os.urandom(32)
    store = Keystore(directory, init=True)
    key_id = store.create_key("", origin=ORIGIN_EXTERNAL).key_id
    _store_import(store, key_id, material)
    sealed = store.encrypt_data_key(key_id, b"k" * 32).ciphertext
    store.close()
    database = sqlite3.connect(directory / "keystore.db")
    database.execute("DELETE FROM imported_materials")  # as schema 7 left it: the digest in keys only
    database.execute("PRAGMA user_version = 7")
    database.commit()
    database.close()
    store = Keystore(directory)
    try:
        store.delete_imported_key_material(key_id)
        with pytest.raises(InvalidArgument) as refused:
            _store_import(store, key_id, os.urandom(32))
        assert refused.value.reason is Reason.KEY_MATERIAL_INCORRECT
        _store_import(store, key_id, material)
        assert store.decrypt_data_key(key_id, sealed) == b"k" * 32
        assert [version.pending for version in store.key_versions(key_id)] == [False]
    finally:
        store.close()
