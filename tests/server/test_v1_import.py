"""The real Huawei SDK against our server's v1.0 key import (create-key origin external, get-parameters-for-import,
import-key-material, delete-imported-key-material: in every official SDK; they were refused or KMS.0201). The
material is wrapped as Huawei asks (RSAES_OAEP_SHA_256 under a 2048-bit public key, 344 base64 characters)."""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Callable

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from huaweicloudsdkkms.v2 import (
    CreateDatakeyRequest,
    CreateDatakeyRequestBody,
    CreateKeyRequest,
    CreateKeyRequestBody,
    CreateParametersForImportRequest,
    CreateParametersForImportResponse,
    DecryptDatakeyRequest,
    DecryptDatakeyRequestBody,
    DeleteImportedKeyMaterialRequest,
    GetParametersForImportRequestBody,
    ImportKeyMaterialRequest,
    ImportKeyMaterialRequestBody,
    KmsClient,
)
from test_sdk_lifecycle import describe, expect_error, key_body

KeyMaker = Callable[[str], str]


def external_key(client: KmsClient, alias: str) -> str:
    body = CreateKeyRequestBody(key_alias=alias, origin="external")
    return client.create_key(CreateKeyRequest(body=body)).key_info.key_id


def parameters(
    client: KmsClient, key_id: str, algorithm: str = "RSAES_OAEP_SHA_256"
) -> CreateParametersForImportResponse:
    body = GetParametersForImportRequestBody(key_id=key_id, wrapping_algorithm=algorithm)
    return client.create_parameters_for_import(CreateParametersForImportRequest(body=body))


def wrap(public_key_b64: str, material: bytes) -> str:
    public = serialization.load_der_public_key(base64.b64decode(public_key_b64))
    assert isinstance(public, rsa.RSAPublicKey)
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
    return base64.b64encode(public.encrypt(material, oaep)).decode()


def import_material(client: KmsClient, key_id: str, material: bytes, expiration: int | None = None) -> None:
    params = parameters(client, key_id)
    body = ImportKeyMaterialRequestBody(key_id=key_id, import_token=params.import_token,
                                        encrypted_key_material=wrap(params.public_key, material),
                                        expiration_time=expiration)  # fmt: skip
    client.import_key_material(ImportKeyMaterialRequest(body=body))


def round_trip(client: KmsClient, key_id: str) -> bool:
    made = client.create_datakey(CreateDatakeyRequest(body=CreateDatakeyRequestBody(key_id=key_id)))
    body = DecryptDatakeyRequestBody(key_id=key_id, cipher_text=made.cipher_text, datakey_cipher_length="32")
    return bool(client.decrypt_datakey(DecryptDatakeyRequest(body=body)).data_key == made.plain_text)


def test_imported_material_serves_until_deleted(client: KmsClient, unique: KeyMaker) -> None:
    key_id = external_key(client, unique("byok"))
    info = describe(client, key_id)
    assert (info.key_state, info.origin, info.expiration_time) == ("5", "external", "")  # pending import
    expect_error(lambda: round_trip(client, key_id), 400, "KMS.1301")

    params = parameters(client, key_id)
    assert params.key_id == key_id and time.time() < params.expiration_time <= time.time() + 86_400 + 60
    wrapped = wrap(params.public_key, os.urandom(32))
    assert len(wrapped) == 344  # what Huawei's SDK documents for encrypted_key_material
    expires = int(time.time()) + 30 * 86_400
    body = ImportKeyMaterialRequestBody(key_id=key_id, import_token=params.import_token,
                                        encrypted_key_material=wrapped, expiration_time=expires)  # fmt: skip
    client.import_key_material(ImportKeyMaterialRequest(body=body))
    info = describe(client, key_id)
    assert (info.key_state, info.expiration_time) == ("2", str(expires * 1000))
    assert round_trip(client, key_id)

    client.delete_imported_key_material(DeleteImportedKeyMaterialRequest(body=key_body(key_id)))
    assert describe(client, key_id).key_state == "5"
    expect_error(lambda: round_trip(client, key_id), 400, "KMS.1301")


def test_import_refusals(client: KmsClient, unique: KeyMaker) -> None:
    key_id = external_key(client, unique("byok-refused"))
    expect_error(lambda: parameters(client, key_id, "SM2_ENCRYPT"), 400, "KMS.0308")
    params = parameters(client, key_id)
    other = parameters(client, external_key(client, unique("byok-other")))
    wrapped = wrap(params.public_key, os.urandom(32))
    wrong_token = ImportKeyMaterialRequestBody(key_id=key_id, import_token=other.import_token,
                                               encrypted_key_material=wrapped)  # fmt: skip
    expect_error(lambda: client.import_key_material(ImportKeyMaterialRequest(body=wrong_token)), 400, "KMS.2605")
    private = ImportKeyMaterialRequestBody(key_id=key_id, import_token=params.import_token,
                                           encrypted_key_material=wrapped, encrypted_privatekey="AAAA")  # fmt: skip
    expect_error(lambda: client.import_key_material(ImportKeyMaterialRequest(body=private)), 400, "KMS.0308")
    body = CreateKeyRequestBody(key_alias=unique("byok-bad-origin"), origin="cloud")
    expect_error(lambda: client.create_key(CreateKeyRequest(body=body)), 400, "KMS.0308")
    import_material(client, key_id, os.urandom(32))
    assert round_trip(client, key_id)
