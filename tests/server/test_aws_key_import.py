"""Key material import (BYOK) through boto3 against a real kubekms server, wrapped with ``cryptography``."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest
from aws_key_types_support import refusal
from aws_policy_support import boto_kms
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from kubekms.devenv.kmsserver import kms_server

OAEP_SHA_256 = padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)
VALID_SECONDS = 5.0  # the imported material's life in the expiry test


@pytest.fixture(scope="module")
def kms(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with kms_server(tmp_path_factory.mktemp("kms-import"), project_id="default") as running:
        yield boto_kms(running)


def _parameters(kms: Any, key_id: str) -> dict[str, Any]:
    return dict(
        kms.get_parameters_for_import(KeyId=key_id, WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048")
    )


def _wrapped(parameters: dict[str, Any], material: bytes) -> bytes:
    public = serialization.load_der_public_key(parameters["PublicKey"])
    assert isinstance(public, rsa.RSAPublicKey)
    return public.encrypt(material, OAEP_SHA_256)


def test_an_external_key_waits_for_its_material_then_round_trips_and_forgets_it_on_delete(kms: Any) -> None:
    key_id = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    metadata = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert (metadata["Origin"], metadata["KeyState"], metadata["Enabled"]) == ("EXTERNAL", "PendingImport", False)
    assert refusal(kms.encrypt, KeyId=key_id, Plaintext=b"m") == "KMSInvalidStateException"
    material = os.urandom(32)
    parameters = _parameters(kms, key_id)
    assert parameters["ParametersValidTo"].timestamp() == pytest.approx(time.time() + 86400, abs=60)
    wrapped = _wrapped(parameters, material)
    kms.import_key_material(KeyId=key_id, ImportToken=parameters["ImportToken"], EncryptedKeyMaterial=wrapped)
    metadata = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert (metadata["KeyState"], metadata["ExpirationModel"]) == ("Enabled", "KEY_MATERIAL_DOES_NOT_EXPIRE")
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"invoice 9")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"invoice 9"
    kms.delete_imported_key_material(KeyId=key_id)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "PendingImport"
    assert refusal(kms.decrypt, CiphertextBlob=blob) == "KMSInvalidStateException"
    other = _wrapped(parameters, os.urandom(32))
    token = parameters["ImportToken"]
    assert refusal(kms.import_key_material, KeyId=key_id, ImportToken=token, EncryptedKeyMaterial=other) == (
        "IncorrectKeyMaterialException"
    )
    kms.import_key_material(KeyId=key_id, ImportToken=token, EncryptedKeyMaterial=wrapped)  # the same material
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"invoice 9"


def test_material_with_an_expiry_stops_working_when_it_expires(kms: Any) -> None:
    key_id = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    parameters = _parameters(kms, key_id)
    # the import, the describe and the encrypt below must all be answered before ValidTo (after it the key is
    # refused, and a maintenance pass forgets the material): 2 s left too little room on a loaded 2-core machine
    valid_to = time.time() + VALID_SECONDS
    kms.import_key_material(KeyId=key_id, ImportToken=parameters["ImportToken"],
                            EncryptedKeyMaterial=_wrapped(parameters, os.urandom(32)), ValidTo=valid_to,
                            ExpirationModel="KEY_MATERIAL_EXPIRES")  # fmt: skip
    metadata = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert metadata["ExpirationModel"] == "KEY_MATERIAL_EXPIRES"
    assert metadata["ValidTo"].timestamp() == pytest.approx(valid_to, abs=0.01)
    kms.encrypt(KeyId=key_id, Plaintext=b"m")  # usable until ValidTo
    deadline = time.monotonic() + VALID_SECONDS + 15
    while True:  # the condition: ValidTo passed on the server's clock
        try:
            kms.encrypt(KeyId=key_id, Plaintext=b"m")
        except kms.exceptions.KMSInvalidStateException:
            break
        assert time.monotonic() < deadline, "the material never expired"
        time.sleep(0.2)
    assert time.time() >= valid_to


def test_import_refusals(kms: Any) -> None:
    key_id = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    other_id = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    parameters = _parameters(kms, other_id)
    wrapped = _wrapped(parameters, os.urandom(32))
    fields = {"KeyId": key_id, "ImportToken": parameters["ImportToken"], "EncryptedKeyMaterial": wrapped}
    assert refusal(kms.import_key_material, **fields) == "InvalidImportTokenException"  # another key's token
    own = _parameters(kms, key_id)
    short = _wrapped(own, os.urandom(16))
    assert refusal(kms.import_key_material, KeyId=key_id, ImportToken=own["ImportToken"],
                   EncryptedKeyMaterial=short) == "IncorrectKeyMaterialException"  # fmt: skip
    assert refusal(kms.import_key_material, **{**fields, "ImportToken": own["ImportToken"]}, ValidTo=time.time() + 60,
                   ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE") == "ValidationException"  # fmt: skip
    aws_kms_key = kms.create_key()["KeyMetadata"]["KeyId"]
    assert refusal(kms.get_parameters_for_import, KeyId=aws_kms_key, WrappingAlgorithm="RSAES_OAEP_SHA_256",
                   WrappingKeySpec="RSA_2048") == "UnsupportedOperationException"  # fmt: skip
    assert refusal(kms.create_key, Origin="EXTERNAL", KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY") == (
        "UnsupportedOperationException"
    )
    assert refusal(kms.enable_key_rotation, KeyId=key_id) == "UnsupportedOperationException"
