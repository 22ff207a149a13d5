"""The real Huawei SDK against our server's v1.0 encrypt-data and decrypt-data (Huawei's small-data encryption):
sealed as encrypt-datakey seals (AWS's Encrypt), base64 on the wire, decrypt-data's key_id optional for a
symmetric ciphertext (ours names its key) and required for RSA OAEP; permissions are the operations' names (kms:Encrypt
and kms:Decrypt in key policies), and the key a ciphertext names is authorised as if the caller had named it."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator

import pytest
from huaweicloudsdkkms.v2 import (
    CreateDatakeyRequest,
    CreateDatakeyRequestBody,
    CreateKeyRequest,
    CreateKeyRequestBody,
    DecryptDatakeyRequest,
    DecryptDatakeyRequestBody,
    DecryptDataRequest,
    DecryptDataRequestBody,
    EncryptDataRequest,
    EncryptDataRequestBody,
    KmsClient,
)
from test_sdk_lifecycle import create_key, expect_error

from kubekms.devenv.kmsserver import KMSServer, Principal, kms_server

KeyMaker = Callable[[str], str]
OWN_KEY = "encrypt-data-own"  # the alias principal "one-key" is limited to


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    principals = [
        Principal("one-key", keys=(OWN_KEY,)),
        Principal("sealer", actions=("encrypt-data",)),
        Principal("opener", actions=("decrypt-data",)),
        Principal("data-keys", actions=("encrypt-datakey", "decrypt-datakey")),
    ]
    with kms_server(tmp_path_factory.mktemp("kms"), project_id="proj1", principals=principals) as running:
        yield running


def encrypt(client: KmsClient, key_ref: str, text: str, aad: str | None = None, algorithm: str | None = None) -> str:
    body = EncryptDataRequestBody(
        key_id=key_ref, plain_text=text, additional_authenticated_data=aad, encryption_algorithm=algorithm
    )
    return client.encrypt_data(EncryptDataRequest(body=body)).cipher_text


def decrypt(client: KmsClient, cipher_text: str, *, key_id: str | None = None, aad: str | None = None,
            algorithm: str | None = None) -> tuple[str, str, str]:  # fmt: skip
    body = DecryptDataRequestBody(
        cipher_text=cipher_text, key_id=key_id, additional_authenticated_data=aad, encryption_algorithm=algorithm
    )
    answer = client.decrypt_data(DecryptDataRequest(body=body))
    return answer.key_id, answer.plain_text, answer.plain_text_base64


def test_symmetric_data_round_trip_without_key_id(client: KmsClient, unique: KeyMaker) -> None:
    alias = unique("data")
    key_id = create_key(client, alias)
    text = "héllo, wörld"
    cipher_text = encrypt(client, alias, text, aad="tenant=a")  # by alias
    assert base64.b64decode(cipher_text, validate=True)
    expected = (key_id, text, base64.b64encode(text.encode()).decode())
    assert decrypt(client, cipher_text, aad="tenant=a") == expected  # the ciphertext names its key
    assert decrypt(client, cipher_text, key_id=key_id, aad="tenant=a") == expected
    expect_error(lambda: decrypt(client, cipher_text, aad="tenant=b"), 400, "KMS.2201")
    other = create_key(client, unique("data-other"))
    expect_error(lambda: decrypt(client, cipher_text, key_id=other, aad="tenant=a"), 400, "KMS.2201")


def test_data_limits_and_algorithms(client: KmsClient, unique: KeyMaker) -> None:
    key_id = create_key(client, unique("limits"))
    assert decrypt(client, encrypt(client, key_id, "x" * 4096))[1] == "x" * 4096
    expect_error(lambda: encrypt(client, key_id, "é" * 2049), 400, "KMS.2101")  # 4098 bytes
    expect_error(lambda: encrypt(client, key_id, "x", algorithm="SM2_ENCRYPT"), 400, "KMS.0308")
    expect_error(lambda: decrypt(client, "bm90IG91cnM="), 400, "KMS.2201")  # "not ours"
    expect_error(lambda: decrypt(client, "%%%"), 400, "KMS.2201")


def test_rsa_oaep_data_round_trip_needs_key_id(client: KmsClient, unique: KeyMaker) -> None:
    body = CreateKeyRequestBody(key_alias=unique("rsa-data"), key_spec="RSA_2048", key_usage="ENCRYPT_DECRYPT")
    key_id = client.create_key(CreateKeyRequest(body=body)).key_info.key_id
    cipher_text = encrypt(client, key_id, "rsa secret", algorithm="RSAES_OAEP_SHA_256")
    assert len(base64.b64decode(cipher_text)) == 256
    opened = decrypt(client, cipher_text, key_id=key_id, algorithm="RSAES_OAEP_SHA_256")
    assert opened[:2] == (key_id, "rsa secret")
    expect_error(lambda: decrypt(client, cipher_text, algorithm="RSAES_OAEP_SHA_256"), 400, "KMS.0204")


def test_permissions_are_the_operation_names(
    server: KMSServer, client: KmsClient, sdk_client: Callable[..., KmsClient], unique: KeyMaker
) -> None:
    key_id = create_key(client, unique("perm"))
    sealer, opener = sdk_client(server, "sealer"), sdk_client(server, "opener")
    cipher_text = encrypt(sealer, key_id, "granted")
    assert decrypt(opener, cipher_text)[1] == "granted"
    expect_error(lambda: encrypt(opener, key_id, "x"), 403, "KMS.0307")
    expect_error(lambda: decrypt(sealer, cipher_text), 403, "KMS.0307")
    data_keys = sdk_client(server, "data-keys")  # the data-key operations' permissions are not these
    expect_error(lambda: encrypt(data_keys, key_id, "x"), 403, "KMS.0307")
    expect_error(lambda: decrypt(data_keys, cipher_text), 403, "KMS.0307")


def test_the_key_a_ciphertext_names_is_authorised(
    server: KMSServer, client: KmsClient, sdk_client: Callable[..., KmsClient], unique: KeyMaker
) -> None:
    own_id = create_key(client, OWN_KEY)
    other_id = create_key(client, unique("not-its"))
    limited = sdk_client(server, "one-key")
    assert decrypt(limited, encrypt(limited, OWN_KEY, "mine")) == (own_id, "mine", base64.b64encode(b"mine").decode())
    foreign = encrypt(client, other_id, "not yours")
    expect_error(lambda: decrypt(limited, foreign), 403, "KMS.0306")  # no key_id: the ciphertext's key is checked
    expect_error(lambda: decrypt(limited, foreign, key_id=own_id), 400, "KMS.2201")


def test_decrypt_data_and_decrypt_datakey_open_only_their_own_ciphertexts(
    server: KMSServer, client: KmsClient, sdk_client: Callable[..., KmsClient], unique: KeyMaker
) -> None:
    """A principal allowed decrypt-data but not decrypt-datakey cannot open create-datakey's data keys (the
    kms-plugin's DEKs) with decrypt-data, nor the other way round (found by the s8 red team)."""
    key_id = create_key(client, unique("kinds"))
    made = client.create_datakey(CreateDatakeyRequest(body=CreateDatakeyRequestBody(key_id=key_id)))
    as_base64 = base64.b64encode(bytes.fromhex(made.cipher_text)).decode()
    expect_error(lambda: decrypt(sdk_client(server, "opener"), as_base64), 400, "KMS.2201")
    expect_error(lambda: decrypt(client, as_base64), 400, "KMS.2201")  # not even for whoever may do both
    sealed = base64.b64decode(encrypt(client, key_id, "text"))
    body = DecryptDatakeyRequestBody(key_id=key_id, cipher_text=sealed.hex(), datakey_cipher_length="4")
    expect_error(lambda: client.decrypt_datakey(DecryptDatakeyRequest(body=body)), 400, "KMS.2201")
