"""Huawei's re-encrypt: open a ciphertext under its source key, seal the plaintext under the destination key.

``cipher_text`` is ours in either of the wire's encodings, answered in the one it came in: hex (create-datakey's
and encrypt-datakey's) or base64 (encrypt-data's). The pipeline authorised the source key (kms:ReEncryptFrom);
the destination is authorised here (kms:ReEncryptTo). Only SYMMETRIC_DEFAULT: the plaintext never leaves.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping

from kubekms import ciphertext as ciphertext_format
from kubekms.errors import AccessDenied, InvalidArgument, InvalidCiphertext
from kubekms.server.principals import context_sealed_as
from kubekms.server.v1_call import Call, JsonAnswer
from kubekms.server.v1_data_keys import DATA_AAD_MARKER
from kubekms.wire.v1.fields import RequestFields
from kubekms.wire.v1.values import MAX_AAD_BYTES

SYMMETRIC_DEFAULT = "SYMMETRIC_DEFAULT"
CIPHERTEXT_CHARS = 2 * 6144  # hex of the largest ciphertext the wire makes (encrypt-data's)
_HEX_CIPHERTEXT = re.compile(ciphertext_format.MAGIC.hex() + "(?:[0-9a-f]{2})*", re.IGNORECASE)


def _ciphertext(fields: RequestFields) -> tuple[bytes, bool]:
    """The ciphertext's bytes and whether it came hex (our format starts "KK": hex "4b4b", base64 "S0s")."""
    text = fields.text("cipher_text", required=True, code="KMS.2201", max_chars=CIPHERTEXT_CHARS)
    if _HEX_CIPHERTEXT.fullmatch(text):
        return bytes.fromhex(text), True
    try:
        return base64.b64decode(text, validate=True), False
    except (binascii.Error, ValueError):
        raise InvalidCiphertext("cipher_text must be hex or base64", code="KMS.2201") from None


def _symmetric(fields: RequestFields, name: str) -> None:
    algorithm = fields.text(name, default=SYMMETRIC_DEFAULT, max_chars=32) or SYMMETRIC_DEFAULT
    if algorithm != SYMMETRIC_DEFAULT:
        raise InvalidArgument(f"{name} must be {SYMMETRIC_DEFAULT}: only symmetric ciphertexts are re-encrypted",
                              code="KMS.0308")  # fmt: skip


def _aad(fields: RequestFields, name: str) -> bytes:
    aad = fields.text(name, code="KMS.0208", max_chars=MAX_AAD_BYTES).encode()
    if len(aad) > MAX_AAD_BYTES:
        raise InvalidArgument(f"{name} must be at most {MAX_AAD_BYTES} bytes", code="KMS.0208")
    if aad.startswith(DATA_AAD_MARKER):  # would open or seal one kind as the other (see data_key_aad)
        raise InvalidArgument(f"{name} cannot start with kubekms's reserved prefix (that of encrypt-data's "
                              "ciphertexts)", code="KMS.0208")  # fmt: skip
    return aad


def source_key_ref(path_key_id: str, query: Mapping[str, str], fields: RequestFields) -> str:
    """``source_key_id`` is optional, as on Huawei: our ciphertext names its key (authorised as if named)."""
    if fields.has("source_key_id"):
        return fields.key_id("source_key_id")
    return ciphertext_format.parse(_ciphertext(fields)[0]).key_id


async def re_encrypt(call: Call) -> JsonAnswer:
    fields = call.fields
    _symmetric(fields, "source_encryption_algorithm")
    _symmetric(fields, "destination_encryption_algorithm")
    blob, as_hex = _ciphertext(fields)
    destination = fields.key_id("destination_key_id")
    expected_length = fields.integer("datakey_cipher_length", code="KMS.2202")
    if call.caller is None:
        raise AccessDenied("this operation needs a signed-in principal")
    destination_aad = _aad(fields, "destination_additional_authenticated_data")
    await call.caller.authorize_action("kms:ReEncryptTo", call.backend, destination, account=call.project_id,
                                       label="re-encrypt",
                                       context=lambda: context_sealed_as(destination_aad.decode()))  # fmt: skip
    source = ciphertext_format.parse(blob).key_id
    source_aad = _aad(fields, "source_additional_authenticated_data")
    try:  # a data key's, or else encrypt-data's (sealed with its marker): re-sealed as the same kind
        marker, plaintext = b"", await call.backend.decrypt_data_key(call.key_ref(), blob, aad=source_aad)
    except InvalidCiphertext:
        marker = DATA_AAD_MARKER
        plaintext = await call.backend.decrypt_data_key(call.key_ref(), blob, aad=marker + source_aad)
    if expected_length is not None and expected_length != len(plaintext):
        raise InvalidCiphertext("the length of cipher_text does not match datakey_cipher_length", code="KMS.2204")
    sealed = await call.backend.encrypt_data_key(destination, plaintext, aad=marker + destination_aad)
    return {
        "key_id": sealed.key_id,
        "source_key_id": source,
        "source_encryption_algorithm": SYMMETRIC_DEFAULT,
        "destination_encryption_algorithm": SYMMETRIC_DEFAULT,
        "cipher_text": sealed.ciphertext.hex() if as_hex else base64.b64encode(sealed.ciphertext).decode(),
    }
