"""The KMS v1.0 wire, server side: a request's fields parsed with the wire's codes.

create-datakey and gen-random lengths are **bits** while every other data-key length is
**bytes**; unknown request fields are ignored.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from typing import Any

from kubekms.backend import (
    DATA_KEY_SPECS,
    ECC_KEY_SPECS,
    KEY_SPECS,
    RSA_KEY_SPECS,
    SYMMETRIC_KEY_SPEC,
    KeyState,
    key_usages,
)
from kubekms.errors import InvalidArgument
from kubekms.naming import has_control_character
from kubekms.wire import inputs
from kubekms.wire.v1.values import (
    DIGEST_SIZE,
    INT_BOUNDS,
    KEY_STATES_FROM_WIRE,
    LIST_EVERY_KEY_SPEC,
    MAX_AAD_BYTES,
    MAX_HEX_CHARS,
    MAX_KEY_ID_LENGTH,
    MAX_TEXT_CHARS,
    MESSAGE_TYPES,
    WIRE_KEY_SPECS,
    JsonObject,
    encryption_context_aad,
    invalid,
    keystore_key_spec,
    parse_integer,
    wire_key_spec,
)

KEY_SPEC_CHARS = 32  # longer than any key spec name: a longer value is refused without being echoed


def parse_json_object(raw: bytes) -> JsonObject:
    """The request body as a bounded JSON object of valid text; empty means ``{}``; anything else is KMS.0202."""
    return inputs.json_object(raw)


class RequestFields:
    """Typed access to a request's fields, each failure with the wire's code and the field's name.

    Every value goes through :mod:`kubekms.wire.inputs`: the body is already free of lone
    surrogates and excess depth; strings here are bounded, integers ASCII and bounded.
    """

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = data

    def raw(self, name: str) -> Any:
        return self._data.get(name)

    def has(self, name: str) -> bool:
        return self._data.get(name) not in (None, "")

    def key_id(self, name: str = "key_id") -> str:
        return key_ref_text(self._data.get(name), name)

    def text(
        self,
        name: str,
        *,
        required: bool = False,
        default: str = "",
        code: str = "KMS.0308",
        max_chars: int = MAX_TEXT_CHARS,
    ) -> str:
        value = self._data.get(name)
        if value is None:
            if required:
                raise InvalidArgument(f"missing parameter {name}", code="KMS.0204")
            return default
        return inputs.text(value, name, max_chars=max_chars, error=invalid(code))

    def identifier(self, name: str, *, code: str) -> str:
        """A required, non-empty string: an empty one is as missing as an absent one."""
        if not self.has(name):
            raise InvalidArgument(f"missing parameter {name}", code="KMS.0204")
        return self.text(name, required=True, code=code)

    def integer(
        self,
        name: str,
        *,
        code: str,
        required: bool = False,
        default: int | None = None,
        bounds: tuple[int, int] = INT_BOUNDS,
    ) -> int | None:
        value = self._data.get(name)
        if value is None or value == "":
            if required:
                raise InvalidArgument(f"missing parameter {name}", code="KMS.0204")
            return default
        return parse_integer(value, name, code=code, bounds=bounds)

    def required_integer(self, name: str, *, code: str, bounds: tuple[int, int] = INT_BOUNDS) -> int:
        value = self.integer(name, code=code, required=True, bounds=bounds)
        assert value is not None
        return value

    def marker(self, name: str, *, code: str) -> int | None:
        return inputs.marker(self._data.get(name), name, error=invalid(code))

    def hex_bytes(self, name: str, *, code: str) -> bytes:
        value = self.text(name, required=True, code=code, max_chars=MAX_HEX_CHARS)
        try:
            return bytes.fromhex(value)
        except ValueError:
            raise InvalidArgument(f"{name} must be a hex string", code=code) from None

    def base64_bytes(self, name: str, *, max_bytes: int, code: str = "KMS.0308") -> bytes:
        """A required base64 field (sign, verify, MACs) of 1 to ``max_bytes`` bytes."""
        value = self.text(name, required=True, code=code, max_chars=4 * max_bytes // 3 + 4)
        try:
            data = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidArgument(f"{name} must be base64", code=code) from None
        if not 1 <= len(data) <= max_bytes:
            raise InvalidArgument(f"{name} must be 1 to {max_bytes} bytes, got {len(data)}", code=code)
        return data

    def strings(self, name: str, *, code: str, max_chars: int = MAX_TEXT_CHARS) -> list[str]:
        """A required, non-empty list of strings."""
        value = self._data.get(name)
        if value is None:
            raise InvalidArgument(f"missing parameter {name}", code="KMS.0204")
        if not isinstance(value, list) or not value:
            raise InvalidArgument(f"{name} must be a non-empty list of strings", code=code)
        return [inputs.text(item, f"{name}[]", max_chars=max_chars, error=invalid(code)) for item in value]

    def objects(self, name: str, *, code: str) -> list[Mapping[str, Any]]:
        value = self._data.get(name)
        if value is None:
            raise InvalidArgument(f"missing parameter {name}", code="KMS.0204")
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise InvalidArgument(f"{name} must be a list of objects", code=code)
        return value

    def object(self, name: str, *, code: str) -> Mapping[str, Any]:
        value = self._data.get(name)
        if value is None:
            raise InvalidArgument(f"missing parameter {name}", code="KMS.0204")
        if not isinstance(value, dict):
            raise InvalidArgument(f"{name} must be an object", code=code)
        return value

    def aad(self, *, opening: bool = False) -> bytes:
        """``additional_authenticated_data`` (Huawei SDK, a string) or ``encryption_context`` (otcextensions);
        ``opening``: for a decrypt (see :func:`encryption_context_aad`)."""
        text = self._data.get("additional_authenticated_data")
        if text not in (None, ""):
            if not isinstance(text, str) or len(text.encode()) > MAX_AAD_BYTES:
                raise InvalidArgument(
                    f"additional_authenticated_data must be a string of at most {MAX_AAD_BYTES} bytes", code="KMS.0208"
                )
            return text.encode()
        context = self._data.get("encryption_context")
        if context in (None, "", {}):
            return b""
        if not isinstance(context, dict) or not all(isinstance(v, str) for v in context.values()):
            raise InvalidArgument("encryption_context must be an object of strings", code="KMS.0208")
        return encryption_context_aad(context, opening=opening)


def key_ref_text(value: object, name: str = "key_id") -> str:
    """A key id or alias as the v1.0 wire names it (body, query or path): present, bounded, valid text."""
    if value is None or value == "":
        raise InvalidArgument(f"missing parameter {name}", code="KMS.0204")
    return inputs.text(value, name, max_chars=MAX_KEY_ID_LENGTH, error=invalid("KMS.0205"))


def data_key_length_from_request(fields: RequestFields) -> int:
    """create-datakey: ``datakey_length`` in **bits** wins over ``key_spec``; returns bytes."""
    bits = fields.integer("datakey_length", code="KMS.1901")
    if bits is not None:
        if bits % 8:
            raise InvalidArgument("datakey_length must be a multiple of 8", code="KMS.1903")
        if not 8 <= bits <= 8192:
            raise InvalidArgument("datakey_length must be in the range 8 bits to 8,192 bits", code="KMS.1901")
        return bits // 8
    spec = fields.text("key_spec", default="AES_256", code="KMS.1902") or "AES_256"
    if spec not in DATA_KEY_SPECS:
        raise InvalidArgument("key_spec can only be AES_128 or AES_256", code="KMS.1902")
    return DATA_KEY_SPECS[spec]


def key_type_from_request(fields: RequestFields) -> tuple[str, str]:
    """create-key ``key_spec`` (Huawei's names) and ``key_usage`` as the keystore names them.

    Huawei's default usage is SIGN_VERIFY for asymmetric keys; an HMAC key's is GENERATE_VERIFY_MAC.
    A keystore name that Huawei spells otherwise (ECC_NIST_P256 for EC_P256) is refused as Huawei
    refuses it, so a client that works here works against Huawei too.
    """
    named = fields.text("key_spec", default="AES_256", max_chars=KEY_SPEC_CHARS) or "AES_256"
    key_spec = keystore_key_spec(named)
    if key_spec not in KEY_SPECS or named in WIRE_KEY_SPECS:
        offered = ", ".join(wire_key_spec(spec) for spec in KEY_SPECS)
        raise InvalidArgument(f"key_spec {named!r} is not offered; use one of {offered}")
    default_usage = "SIGN_VERIFY" if key_spec in (*RSA_KEY_SPECS, *ECC_KEY_SPECS) else key_usages(key_spec)[0]
    return key_spec, fields.text("key_usage", default=default_usage) or default_usage


def key_spec_filter_from_request(fields: RequestFields) -> str | None:
    """list-keys ``key_spec``: absent lists AES_256 keys only (Huawei's default), ALL every key (None)."""
    named = fields.text("key_spec", default=SYMMETRIC_KEY_SPEC, max_chars=KEY_SPEC_CHARS) or SYMMETRIC_KEY_SPEC
    if named == LIST_EVERY_KEY_SPEC:
        return None
    key_spec = keystore_key_spec(named)
    if key_spec not in KEY_SPECS or named in WIRE_KEY_SPECS:
        offered = ", ".join((LIST_EVERY_KEY_SPEC, *(wire_key_spec(spec) for spec in KEY_SPECS)))
        raise InvalidArgument(f"key_spec {named!r} is not a list filter; use one of {offered}", code="KMS.0308")
    return key_spec


def message_is_digest(fields: RequestFields) -> bool:
    """sign/verify ``message_type``: DIGEST (the default, as Huawei's) or RAW."""
    kind = fields.text("message_type", default="DIGEST", max_chars=16) or "DIGEST"
    if kind not in MESSAGE_TYPES:
        raise InvalidArgument(f"message_type must be one of {', '.join(MESSAGE_TYPES)}")
    return kind == "DIGEST"


def random_length_from_request(fields: RequestFields) -> int:
    """gen-random: ``random_data_length`` in **bits**; returns bytes."""
    bits = fields.required_integer("random_data_length", code="KMS.1801")
    if bits % 8:
        raise InvalidArgument("random_data_length must be a multiple of 8", code="KMS.1802")
    if not 8 <= bits <= 8192:
        raise InvalidArgument("random_data_length must be in the range 8 bits to 8,192 bits", code="KMS.1801")
    return bits // 8


def data_key_plaintext_from_request(fields: RequestFields) -> bytes:
    """encrypt-datakey: ``plain_text`` = hex(DEK || SHA-256(DEK)), ``datakey_plain_length`` = DEK bytes."""
    raw = fields.hex_bytes("plain_text", code="KMS.2101")
    length = fields.required_integer("datakey_plain_length", code="KMS.2102")
    if not 1 <= length <= 1024:
        raise InvalidArgument("datakey_plain_length must be from 1 to 1024 bytes", code="KMS.2102")
    if len(raw) != length + DIGEST_SIZE:
        raise InvalidArgument("the length of plain_text does not match datakey_plain_length", code="KMS.2104")
    data_key, digest = raw[:length], raw[length:]
    if not hmac.compare_digest(hashlib.sha256(data_key).digest(), digest):
        raise InvalidArgument("failed to verify the DEK hash", code="KMS.2103")
    return data_key


def cipher_length_from_request(fields: RequestFields) -> int | None:
    """decrypt-datakey: ``datakey_cipher_length`` = DEK plaintext bytes; optional here."""
    length = fields.integer("datakey_cipher_length", code="KMS.2202")
    if length is not None and not 1 <= length <= 1024:
        raise InvalidArgument("datakey_cipher_length must be from 1 to 1024 bytes", code="KMS.2202")
    return length


def key_state_filter_from_request(fields: RequestFields) -> KeyState | None:
    """list-keys ``key_state``: "1" to "5" as the request's filter, or None."""
    if not fields.has("key_state"):
        return None
    state = KEY_STATES_FROM_WIRE.get(fields.text("key_state", max_chars=1))
    if state is None or state.value != fields.raw("key_state"):  # "7" is the cloud's to set, not a filter
        raise InvalidArgument("key_state must be one of 1-5", code="KMS.0308")
    return state


def tags_from_wire(items: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Tag items ``{key, value}``; Huawei refuses the non-printing characters ASCII 0-31 in both (and so
    the C1 controls and DEL: the keystore's rule, :func:`kubekms.naming.has_control_character`).

    Huawei's lengths (keys 36, values 43 characters) are not applied: the keystore's (128, 255) hold
    the operator's owner tags, whose values (``<namespace>/<name>``) are longer.
    """
    tags: dict[str, str] = {}
    for item in items:
        tag_key, tag_value = item.get("key"), item.get("value", "")
        if not isinstance(tag_key, str) or not tag_key:
            raise InvalidArgument("every tag needs a non-empty string key", code="KMS.0406")
        if has_control_character(tag_key):
            raise InvalidArgument("tag keys cannot hold control characters", code="KMS.0406")
        if not isinstance(tag_value, str):
            raise InvalidArgument(f"tag {tag_key[:64]!r}: the value must be a string", code="KMS.0405")
        if has_control_character(tag_value):
            raise InvalidArgument(f"tag {tag_key[:64]!r}: values cannot hold control characters", code="KMS.0405")
        tags[tag_key] = tag_value
    return tags
