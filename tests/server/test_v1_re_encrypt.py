"""The real Huawei SDK's re-encrypt against our server: a ciphertext opened under its source key and sealed under
the destination key, hex (data keys) or base64 (encrypt-data) answered as it came; both keys authorised."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator

import pytest
from huaweicloudsdkkms.v2 import (
    CreateDatakeyRequest,
    CreateDatakeyRequestBody,
    CreateEcDatakeyPairRequest,
    CreateEcDatakeyPairRequestBody,
    DecryptDatakeyRequest,
    DecryptDatakeyRequestBody,
    KmsClient,
    ListKmsTagsRequest,
    ReEncryptRequest,
    ReEncryptRequestBody,
)
from test_sdk_lifecycle import create_key, expect_error
from test_v1_encrypt_data import decrypt, encrypt

from kubekms.devenv.kmsserver import KMSServer, Principal, kms_server
from kubekms.devenv.processes import wait_for

KeyMaker = Callable[[str], str]
SOURCE, DESTINATION = "re-encrypt-source", "re-encrypt-destination"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    principals = [
        Principal("source-only", keys=(SOURCE,)),
        Principal("destination-only", keys=(DESTINATION,)),
        Principal("both", keys=(SOURCE, DESTINATION), actions=("re-encrypt",)),
    ]
    with kms_server(tmp_path_factory.mktemp("kms"), project_id="proj1", principals=principals) as running:
        yield running


@pytest.fixture(scope="module")
def keys(client: KmsClient) -> tuple[str, str]:
    return create_key(client, SOURCE), create_key(client, DESTINATION)


def re_encrypt(client: KmsClient, cipher_text: str, destination: str, **extra: object):  # type: ignore[no-untyped-def]
    body = ReEncryptRequestBody(cipher_text=cipher_text, destination_key_id=destination, **extra)
    return client.re_encrypt(ReEncryptRequest(body=body))


def test_a_data_keys_hex_ciphertext_moves_to_the_destination_key(client: KmsClient, keys: tuple[str, str]) -> None:
    source, destination = keys
    made = client.create_datakey(CreateDatakeyRequest(
        body=CreateDatakeyRequestBody(key_id=source, additional_authenticated_data="from")))  # fmt: skip
    moved = re_encrypt(client, made.cipher_text, DESTINATION, source_key_id=source,
                       source_additional_authenticated_data="from",
                       destination_additional_authenticated_data="to", datakey_cipher_length="32")  # fmt: skip
    assert (moved.key_id, moved.source_key_id) == (destination, source)
    assert (moved.source_encryption_algorithm, moved.destination_encryption_algorithm) == ("SYMMETRIC_DEFAULT",) * 2
    assert bytes.fromhex(moved.cipher_text)[:2] == b"KK"  # hex in, hex out
    opened = client.decrypt_datakey(DecryptDatakeyRequest(body=DecryptDatakeyRequestBody(
        key_id=destination, cipher_text=moved.cipher_text, datakey_cipher_length="32",
        additional_authenticated_data="to")))  # fmt: skip
    assert opened.data_key == made.plain_text
    expect_error(lambda: re_encrypt(client, made.cipher_text, destination), 400, "KMS.2201")  # its AAD is missing
    expect_error(lambda: re_encrypt(client, made.cipher_text, destination, source_key_id=destination,
                                    source_additional_authenticated_data="from"), 400, "KMS.2201")  # fmt: skip
    expect_error(lambda: re_encrypt(client, made.cipher_text, destination, datakey_cipher_length="16",
                                    source_additional_authenticated_data="from"), 400, "KMS.2204")  # fmt: skip


def test_encrypt_datas_base64_ciphertext_moves_without_naming_its_key(client: KmsClient, keys: tuple[str, str]) -> None:
    source, destination = keys
    moved = re_encrypt(client, encrypt(client, source, "héllo"), destination)
    assert moved.source_key_id == source and base64.b64decode(moved.cipher_text, validate=True)
    assert decrypt(client, moved.cipher_text) == (destination, "héllo", base64.b64encode("héllo".encode()).decode())


def test_only_symmetric_ciphertexts_and_our_formats(client: KmsClient, keys: tuple[str, str]) -> None:
    source, destination = keys
    sealed = encrypt(client, source, "x")
    for name in ("source_encryption_algorithm", "destination_encryption_algorithm"):
        expect_error(
            lambda n=name: re_encrypt(client, sealed, destination, **{n: "RSAES_OAEP_SHA_256"}), 400, "KMS.0308"
        )
    expect_error(lambda: re_encrypt(client, "bm90IG91cnM=", destination), 400, "KMS.2201")
    expect_error(lambda: re_encrypt(client, "%%%", destination), 400, "KMS.2201")


def test_both_keys_are_authorised(
    server: KMSServer, client: KmsClient, sdk_client: Callable[..., KmsClient], keys: tuple[str, str]
) -> None:
    source, destination = keys
    sealed = encrypt(client, source, "x")
    expect_error(lambda: re_encrypt(sdk_client(server, "source-only"), sealed, destination), 403, "KMS.0306")
    expect_error(lambda: re_encrypt(sdk_client(server, "destination-only"), sealed, destination), 403, "KMS.0306")
    assert re_encrypt(sdk_client(server, "both"), sealed, destination).key_id == destination


def test_each_new_operation_has_its_audit_record(server: KMSServer, client: KmsClient, keys: tuple[str, str]) -> None:
    source, destination = keys
    re_encrypt(client, encrypt(client, source, "audited"), destination)
    pair = client.create_ec_datakey_pair(CreateEcDatakeyPairRequest(
        body=CreateEcDatakeyPairRequestBody(key_id=source, key_spec="ECC_NIST_P256")))  # fmt: skip
    client.list_kms_tags(ListKmsTagsRequest())

    def audited() -> set[tuple[str, str, str]] | None:
        records = [json.loads(line) for line in server.audit_log.read_text().splitlines()]
        found = {(r["operation"], r["key_id"], r["result"]) for r in records}
        wanted = {
            ("re-encrypt", source, "OK"),  # the source key: the destination is authorised by the handler
            ("create-ec-datakey-pair", pair.key_id, "OK"),
            ("list-kms-tags", "", "OK"),
        }
        return found if wanted <= found else None

    wait_for(audited, 10, "the audit records of re-encrypt, create-ec-datakey-pair and list-kms-tags")
