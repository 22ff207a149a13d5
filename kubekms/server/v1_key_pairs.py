"""Huawei's create-rsa-datakey-pair and create-ec-datakey-pair: the backend's data key pairs (the AWS wire's
GenerateDataKeyPair) in Huawei's field names.

``public_key`` is DER SubjectPublicKeyInfo, ``private_key_plain_text`` PKCS #8 DER and ``private_key_cipher_text``
our ciphertext sealed as encrypt-data seals (decrypt-data opens it, decrypt-datakey does not), all base64.
Huawei's ``wrapped_private_key``/``ciphertext_recipient`` (enclave recipients) and ``pin`` are not offered.
"""

from __future__ import annotations

import base64

from kubekms.backend import ECC_KEY_SPECS, RSA_KEY_SPECS, DataKeyPair
from kubekms.errors import InvalidArgument
from kubekms.server.v1_call import Call, JsonAnswer
from kubekms.server.v1_data_keys import data_aad
from kubekms.wire.v1.fields import RequestFields

PAIR_SPEC_CHARS = 32  # longer than any pair spec: refused without being echoed


def _pair_spec(fields: RequestFields, offered: tuple[str, ...]) -> str:
    spec = fields.text("key_spec", required=True, max_chars=PAIR_SPEC_CHARS)
    if spec not in offered:
        raise InvalidArgument(f"key_spec must be one of {', '.join(offered)}", code="KMS.0308")
    return spec


def _with_plaintext(fields: RequestFields) -> bool:
    value = fields.raw("with_plain_text")
    if value is None:
        return True  # Huawei's default
    if value is True or value == "true":  # text too: a client that sends JSON booleans as text
        return True
    if value is False or value == "false":  # never 0/1: an integer is refused
        return False
    raise InvalidArgument("with_plain_text must be true or false", code="KMS.0308")


def _no_pin(fields: RequestFields) -> None:
    if fields.has("pin"):
        raise InvalidArgument("pin protection of a data key pair is not offered", code="KMS.0308")


def key_pair_answer(pair: DataKeyPair) -> JsonAnswer:
    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    answer = {
        "key_id": pair.key_id,
        "key_spec": pair.pair_spec,
        "public_key": b64(pair.public_key),
        "private_key_cipher_text": b64(pair.private_ciphertext),
    }
    if pair.private_plaintext is not None:
        answer["private_key_plain_text"] = b64(pair.private_plaintext)
    return answer


async def _create_pair(call: Call, offered: tuple[str, ...]) -> JsonAnswer:
    fields = call.fields
    spec = _pair_spec(fields, offered)
    _no_pin(fields)
    pair = await call.backend.create_data_key_pair(
        call.key_ref(), spec, aad=data_aad(fields), with_plaintext=_with_plaintext(fields)
    )
    return key_pair_answer(pair)


async def create_rsa_datakey_pair(call: Call) -> JsonAnswer:
    return await _create_pair(call, RSA_KEY_SPECS)


async def create_ec_datakey_pair(call: Call) -> JsonAnswer:
    return await _create_pair(call, ECC_KEY_SPECS)
