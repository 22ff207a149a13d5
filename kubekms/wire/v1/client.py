"""The KMS v1.0 wire, client side: request bodies as the REST providers send them."""

from __future__ import annotations

import hashlib

from kubekms.wire.v1.values import JsonObject


def create_datakey_request(key_id: str, length: int, aad: bytes) -> JsonObject:
    body: JsonObject = {"key_id": key_id, "datakey_length": str(length * 8)}
    if aad:
        body["additional_authenticated_data"] = aad.decode()
    return body


def encrypt_datakey_request(key_id: str, plaintext: bytes, aad: bytes) -> JsonObject:
    body: JsonObject = {
        "key_id": key_id,
        "plain_text": (plaintext + hashlib.sha256(plaintext).digest()).hex(),
        "datakey_plain_length": str(len(plaintext)),
    }
    if aad:
        body["additional_authenticated_data"] = aad.decode()
    return body


def decrypt_datakey_request(
    key_id: str, ciphertext: bytes, aad: bytes, plaintext_length: int | None = None
) -> JsonObject:
    body: JsonObject = {"key_id": key_id, "cipher_text": ciphertext.hex()}
    if plaintext_length is not None:
        body["datakey_cipher_length"] = str(plaintext_length)
    if aad:
        body["additional_authenticated_data"] = aad.decode()
    return body


def random_request(length: int) -> JsonObject:
    return {"random_data_length": str(length * 8)}
