"""v1.0 randomness, data keys (create/encrypt/decrypt-datakey) and small data (encrypt-data, decrypt-data)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubekms import ciphertext as ciphertext_format
from kubekms.errors import InvalidArgument, InvalidCiphertext
from kubekms.keystore import rules
from kubekms.server.principals import V1_CONTEXT_OPERATIONS, encryption_context
from kubekms.server.v1_call import Call, JsonAnswer
from kubekms.server.v1_call import KeyScope as KeyScope  # re-exported: the pipeline and the console read it here
from kubekms.wire.v1 import answers as v1_answers
from kubekms.wire.v1 import fields as v1_fields
from kubekms.wire.v1.fields import RequestFields

# --------------------------------------------------------------------- randomness and data keys

# Sealed into encrypt-data's (and data key pairs') AAD before the caller's: decrypt-data opens only those, never
# a data key made by create-datakey or another wire (those need decrypt-datakey), and decrypt-datakey never opens
# them. AWS's AADs (JSON) never start with it; a v1.0 text AAD may (JSON's \u0000 is a NUL): the data key
# operations and re-encrypt refuse one that does (data_key_aad).
DATA_AAD_MARKER = b"kubekms/encrypt-data\x00"


async def gen_random(call: Call) -> JsonAnswer:
    return v1_answers.random_answer(
        await call.backend.generate_random(v1_fields.random_length_from_request(call.fields))
    )


def data_key_aad(fields: RequestFields, *, opening: bool = False) -> bytes:
    """A data key's AAD, the caller's own: never one starting with :data:`DATA_AAD_MARKER`'s bytes (JSON's
    ``\\u0000`` makes them), which would make a data key decrypt-data opens or let decrypt-datakey open
    encrypt-data's ciphertexts and data key pairs' private keys."""
    aad = fields.aad(opening=opening)
    if aad.startswith(DATA_AAD_MARKER):
        raise InvalidArgument("additional_authenticated_data cannot start with kubekms's reserved prefix "
                              "(that of encrypt-data's ciphertexts)", code="KMS.0208")  # fmt: skip
    return aad


def check_policy_context(operation: str, fields: RequestFields, body: bytes) -> None:
    """Key policy conditions and grant constraints are evaluated on the context the pipeline reads from the body
    (:func:`~kubekms.server.principals.encryption_context`: the AWS wire's field names too); refuse a body where
    that is not the context the operation seals or opens with. Else a grantee bound to one context named it in a
    field this wire ignores (``EncryptionContext``, or ``encryption_context`` beside the AAD that wins over it, or
    on an operation without one) and used another."""
    if encryption_context(body) != _used_context(operation, fields):
        raise InvalidArgument(
            "the request names an encryption context this operation does not use: v1.0 takes one "
            "encryption_context, and not beside additional_authenticated_data",
            code="KMS.0208",
        )


def _used_context(operation: str, fields: RequestFields) -> Mapping[str, Any]:
    context = fields.raw("encryption_context")
    if operation not in V1_CONTEXT_OPERATIONS or fields.has("additional_authenticated_data"):
        return {}
    if not isinstance(context, dict) or not all(isinstance(value, str) for value in context.values()):
        return {}  # none for policies either; RequestFields.aad refuses it with its own message
    return context


async def create_datakey(call: Call) -> JsonAnswer:
    length = v1_fields.data_key_length_from_request(call.fields)
    data_key = await call.backend.create_data_key(call.key_ref(), length=length, aad=data_key_aad(call.fields))
    return v1_answers.data_key_answer(data_key, with_plaintext=True)


async def create_datakey_without_plaintext(call: Call) -> JsonAnswer:
    length = v1_fields.data_key_length_from_request(call.fields)
    data_key = await call.backend.create_data_key_without_plaintext(
        call.key_ref(), length=length, aad=data_key_aad(call.fields)
    )
    return v1_answers.data_key_answer(data_key, with_plaintext=False)


async def encrypt_datakey(call: Call) -> JsonAnswer:
    plaintext = v1_fields.data_key_plaintext_from_request(call.fields)
    data_key = await call.backend.encrypt_data_key(call.key_ref(), plaintext, aad=data_key_aad(call.fields))
    return v1_answers.encrypted_data_key_answer(data_key, len(plaintext))


async def decrypt_datakey(call: Call) -> JsonAnswer:
    ciphertext = call.fields.hex_bytes("cipher_text", code="KMS.2201")
    expected_length = v1_fields.cipher_length_from_request(call.fields)
    plaintext = await call.backend.decrypt_data_key(call.key_ref(), ciphertext,
                                                 aad=data_key_aad(call.fields, opening=True))  # fmt: skip
    if expected_length is not None and expected_length != len(plaintext):
        raise InvalidCiphertext("the length of cipher_text does not match datakey_cipher_length", code="KMS.2204")
    return v1_answers.decrypted_data_key_answer(plaintext)


# --------------------------------------------------------------------- data (Huawei's encrypt-data, decrypt-data)

SYMMETRIC_DEFAULT = "SYMMETRIC_DEFAULT"
ENCRYPTION_ALGORITHMS = (SYMMETRIC_DEFAULT, "RSAES_OAEP_SHA_256")  # Huawei's SM2_ENCRYPT: no SM2 keys here
DATA_CIPHERTEXT_BYTES = 6144


def data_aad(fields: RequestFields, *, opening: bool = False) -> bytes:
    return DATA_AAD_MARKER + fields.aad(opening=opening)


def _encryption_algorithm(fields: RequestFields) -> str:
    algorithm = fields.text("encryption_algorithm", default=SYMMETRIC_DEFAULT, max_chars=32) or SYMMETRIC_DEFAULT
    if algorithm not in ENCRYPTION_ALGORITHMS:
        raise InvalidArgument(f"encryption_algorithm must be one of {', '.join(ENCRYPTION_ALGORITHMS)}")
    return algorithm


def _data_ciphertext(fields: RequestFields) -> bytes:
    return fields.base64_bytes("cipher_text", max_bytes=DATA_CIPHERTEXT_BYTES, code="KMS.2201")


def data_key_ref(path_key_id: str, query: Mapping[str, str], fields: RequestFields) -> str:
    """decrypt-data's ``key_id`` is optional, as on Huawei: our symmetric ciphertext names its key (which the
    caller must then be allowed to use, as if it had named it)."""
    if fields.has("key_id") or _encryption_algorithm(fields) != SYMMETRIC_DEFAULT:
        return fields.key_id()
    return ciphertext_format.parse(_data_ciphertext(fields)).key_id


async def encrypt_data(call: Call) -> JsonAnswer:
    """``plain_text`` (text, 1-4096 bytes as UTF-8) sealed as the AWS wire's Encrypt seals; ``cipher_text`` base64."""
    algorithm = _encryption_algorithm(call.fields)
    plaintext = call.fields.text("plain_text", required=True, code="KMS.2101",
                                 max_chars=rules.ENCRYPT_PLAINTEXT_BYTES[1]).encode()  # fmt: skip
    if algorithm != SYMMETRIC_DEFAULT:
        made = await call.backend.encrypt_asymmetric(call.key_ref(), plaintext, algorithm=algorithm)
        return v1_answers.encrypted_data_answer(made.key_id, made.data)
    data_key = await call.backend.encrypt_data_key(call.key_ref(), plaintext, aad=data_aad(call.fields))
    return v1_answers.encrypted_data_answer(data_key.key_id, data_key.ciphertext)


async def decrypt_data(call: Call) -> JsonAnswer:
    algorithm = _encryption_algorithm(call.fields)
    blob = _data_ciphertext(call.fields)
    if algorithm != SYMMETRIC_DEFAULT:
        opened = await call.backend.decrypt_asymmetric(call.key_ref(), blob, algorithm=algorithm)
        return v1_answers.decrypted_data_answer(opened.key_id, opened.data)
    plaintext = await call.backend.decrypt_data_key(call.key_ref(), blob, aad=data_aad(call.fields, opening=True))
    return v1_answers.decrypted_data_answer(ciphertext_format.parse(blob).key_id, plaintext)
