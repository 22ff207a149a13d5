"""The KMS v1.0 wire <-> backend models, both directions (server answers, client decodes).

Wire facts (see design/kms-rest-v1-wire.md): every KeyDetails field is a string, times are
epoch **milliseconds**, ``key_state`` is "1".."5" or "7" (frozen), numbers arrive as strings
(Huawei SDK) or ints (otcextensions), create-datakey and gen-random lengths are **bits** while every other
data-key length is **bytes**, binary fields are hex. Unknown request fields are ignored. Every
request value is parsed by :mod:`kubekms.wire.inputs` (the strict edge shared with the AWS wire).

kubekms adds three KeyDetails fields the cloud does not send (``current_version``,
``rotation_interval``, ``last_rotation_time``); decoders default them when absent.
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from kubekms import ciphertext as ciphertext_format
from kubekms.backend import DATA_KEY_SPECS, DataKey, KeyMetadata, KeyState, Quota, RotationStatus
from kubekms.errors import (
    AccessDenied,
    AlreadyExists,
    Disabled,
    InvalidArgument,
    InvalidCiphertext,
    InvalidState,
    KMSError,
    LimitExceeded,
    NotFound,
    PendingDeletion,
    Throttled,
    Unauthenticated,
    Unavailable,
)
from kubekms.wire import inputs

JsonObject = dict[str, Any]

MAX_KEY_ID_LENGTH = 255
MAX_AAD_BYTES = 128  # the wire's limit on additional_authenticated_data
MAX_TEXT_CHARS = 8192  # any other string field (descriptions, specs, tags are checked tighter by the keystore)
MAX_HEX_CHARS = 2 * 8192  # hex fields: data keys with digest, ciphertexts
INT_BOUNDS = (-(2**63), 2**63 - 1)  # integer fields before their own range check: 64 bits
DIGEST_SIZE = hashlib.sha256().digest_size

# ---------------------------------------------------------------------------- scalars


def to_millis(moment: datetime | None) -> str:
    return "" if moment is None else str(int(moment.timestamp() * 1000))


def from_millis(value: object) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        return datetime.fromtimestamp(int(str(value)) / 1000, tz=UTC)
    except (TypeError, ValueError, OverflowError):
        raise InvalidArgument(f"expected epoch milliseconds, got {value!r}") from None


def to_bool_text(value: bool) -> str:
    return "true" if value else "false"


def from_bool(value: object) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def parse_integer(value: object, name: str, *, code: str = "KMS.0308", bounds: tuple[int, int] = INT_BOUNDS) -> int:
    """An integer given as a JSON int or a string of ASCII digits; never a bool or a float."""
    return inputs.integer(value, name, bounds, allow_text=True, error=_invalid(code))


def _invalid(code: str) -> inputs.ErrorFactory:
    return functools.partial(InvalidArgument, code=code)


# ---------------------------------------------------------------------------- requests (server side)


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
        return inputs.text(value, name, max_chars=max_chars, error=_invalid(code))

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
        return inputs.marker(self._data.get(name), name, error=_invalid(code))

    def hex_bytes(self, name: str, *, code: str) -> bytes:
        value = self.text(name, required=True, code=code, max_chars=MAX_HEX_CHARS)
        try:
            return bytes.fromhex(value)
        except ValueError:
            raise InvalidArgument(f"{name} must be a hex string", code=code) from None

    def strings(self, name: str, *, code: str, max_chars: int = MAX_TEXT_CHARS) -> list[str]:
        """A required, non-empty list of strings."""
        value = self._data.get(name)
        if value is None:
            raise InvalidArgument(f"missing parameter {name}", code="KMS.0204")
        if not isinstance(value, list) or not value:
            raise InvalidArgument(f"{name} must be a non-empty list of strings", code=code)
        return [inputs.text(item, f"{name}[]", max_chars=max_chars, error=_invalid(code)) for item in value]

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

    def aad(self) -> bytes:
        """``additional_authenticated_data`` (Huawei SDK, a string) or ``encryption_context`` (otcextensions)."""
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
        return encryption_context_aad(context)


def key_ref_text(value: object, name: str = "key_id") -> str:
    """A key id or alias as the v1.0 wire names it (body, query or path): present, bounded, valid text."""
    if value is None or value == "":
        raise InvalidArgument(f"missing parameter {name}", code="KMS.0204")
    return inputs.text(value, name, max_chars=MAX_KEY_ID_LENGTH, error=_invalid("KMS.0205"))


def encryption_context_aad(context: Mapping[str, str]) -> bytes:
    """One canonical byte string per context, whatever the key order the client sent."""
    return json.dumps(dict(context), sort_keys=True, separators=(",", ":")).encode()


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


# Huawei's documented key_state values -> our KeyState. "7" (frozen: the cloud froze the key, e.g.
# for arrears; the owner can neither use nor enable it) maps to PENDING_ACTIVATION, the state of a
# key that is not usable and not the owner's to switch on: DISABLED would make the operator call
# enable-key on it to "correct drift", which the cloud refuses.
_KEY_STATES_FROM_WIRE = {
    "1": KeyState.PENDING_ACTIVATION,
    "2": KeyState.ENABLED,
    "3": KeyState.DISABLED,
    "4": KeyState.PENDING_DELETION,
    "5": KeyState.PENDING_IMPORT,
    "7": KeyState.PENDING_ACTIVATION,
}
FROZEN_KEY_STATE = "7"


def key_state_from_wire(value: object, *, code: str = "KMS.0308") -> KeyState:
    """A KeyDetails ``key_state`` from a server: Huawei's documented values, and our ``destroyed``."""
    state = _KEY_STATES_FROM_WIRE.get(str(value))
    if state is not None:
        return state
    if value == KeyState.DESTROYED.value:
        return KeyState.DESTROYED
    raise InvalidArgument(f"key_state must be one of 1-5 or 7, got {str(value)[:16]!r}", code=code)


def key_state_filter_from_request(fields: RequestFields) -> KeyState | None:
    """list-keys ``key_state``: "1" to "5" as the request's filter, or None."""
    if not fields.has("key_state"):
        return None
    state = _KEY_STATES_FROM_WIRE.get(fields.text("key_state", max_chars=1))
    if state is None or state.value != fields.raw("key_state"):  # "7" is the cloud's to set, not a filter
        raise InvalidArgument("key_state must be one of 1-5", code="KMS.0308")
    return state


def tags_from_wire(items: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for item in items:
        tag_key, tag_value = item.get("key"), item.get("value", "")
        if not isinstance(tag_key, str) or not tag_key:
            raise InvalidArgument("every tag needs a non-empty string key", code="KMS.0406")
        if not isinstance(tag_value, str):
            raise InvalidArgument(f"tag {tag_key[:64]!r}: the value must be a string", code="KMS.0405")
        tags[tag_key] = tag_value
    return tags


# ---------------------------------------------------------------------------- requests (client side)


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


# ---------------------------------------------------------------------------- responses


def key_details(meta: KeyMetadata, *, project_id: str = "", realm: str = "") -> JsonObject:
    return {
        "key_id": meta.key_id,
        "domain_id": meta.project_id or project_id,
        "key_alias": meta.alias,
        "realm": realm,
        "key_spec": meta.key_spec,
        "key_usage": meta.key_usage,
        "key_description": meta.description,
        "creation_date": to_millis(meta.created_at),
        "scheduled_deletion_date": to_millis(meta.deletion_date),
        "key_state": meta.state.value,
        "default_key_flag": "0",
        "key_type": "1",
        "expiration_time": "",
        "origin": meta.origin,
        "key_rotation_enabled": to_bool_text(meta.rotation_enabled),
        "current_version": str(meta.current_version),
        "rotation_interval": str(meta.rotation_interval_days),
        "last_rotation_time": to_millis(meta.last_rotation_at),
    }


def key_metadata_from_wire(details: Mapping[str, Any], *, project_id: str = "") -> KeyMetadata:
    created = from_millis(details.get("creation_date")) or datetime.fromtimestamp(0, tz=UTC)
    return KeyMetadata(
        key_id=str(details.get("key_id", "")),
        alias=str(details.get("key_alias", "")),
        description=str(details.get("key_description", "")),
        key_spec=str(details.get("key_spec", "AES_256")),
        key_usage=str(details.get("key_usage", "ENCRYPT_DECRYPT")),
        state=key_state_from_wire(details.get("key_state", "")),
        created_at=created,
        current_version=int(details.get("current_version") or 1),
        rotation_enabled=from_bool(details.get("key_rotation_enabled")),
        rotation_interval_days=int(details.get("rotation_interval") or 0),
        last_rotation_at=from_millis(details.get("last_rotation_time")),
        deletion_date=from_millis(details.get("scheduled_deletion_date")),
        origin=str(details.get("origin", "kms")),
        project_id=str(details.get("domain_id") or project_id),
    )


def key_state_info(meta: KeyMetadata) -> JsonObject:
    return {"key_id": meta.key_id, "key_state": meta.state.value}


def rotation_status(status: RotationStatus) -> JsonObject:
    return {
        "key_rotation_enabled": status.enabled,
        "rotation_interval": status.interval_days,
        "last_rotation_time": to_millis(status.last_rotation_at),
        "number_of_rotations": status.number_of_rotations,
    }


def rotation_status_from_wire(body: Mapping[str, Any]) -> RotationStatus:
    return RotationStatus(
        enabled=from_bool(body.get("key_rotation_enabled")),
        interval_days=int(body.get("rotation_interval") or 0),
        last_rotation_at=from_millis(body.get("last_rotation_time")),
        number_of_rotations=int(body.get("number_of_rotations") or 0),
        next_rotation_at=None,
    )


def data_key_answer(data_key: DataKey, *, with_plaintext: bool) -> JsonObject:
    body: JsonObject = {"key_id": data_key.key_id, "cipher_text": data_key.ciphertext.hex()}
    if with_plaintext and data_key.plaintext is not None:
        body["plain_text"] = data_key.plaintext.hex()
    return body


def encrypted_data_key_answer(data_key: DataKey, plaintext_length: int) -> JsonObject:
    return {
        "key_id": data_key.key_id,
        "cipher_text": data_key.ciphertext.hex(),
        "datakey_length": str(plaintext_length),
    }


def decrypted_data_key_answer(data_key: bytes) -> JsonObject:
    return {
        "data_key": data_key.hex(),
        "datakey_length": str(len(data_key)),
        "datakey_dgst": hashlib.sha256(data_key).hexdigest(),
    }


def _hex_field(body: Mapping[str, Any], name: str) -> bytes:
    try:
        return bytes.fromhex(str(body[name]))
    except (KeyError, ValueError):
        raise Unavailable(f"the KMS answered without a valid hex {name}") from None


def data_key_from_wire(body: Mapping[str, Any], *, requested_key_id: str) -> DataKey:
    """create-datakey(-without-plaintext) / encrypt-datakey answers; the version comes from our ciphertext format."""
    ciphertext = _hex_field(body, "cipher_text")
    plaintext = _hex_field(body, "plain_text") if "plain_text" in body else None
    try:
        key_version = ciphertext_format.parse(ciphertext).key_version
    except InvalidCiphertext:
        key_version = 0  # a foreign (cloud) ciphertext: its version is opaque
    return DataKey(
        key_id=str(body.get("key_id") or requested_key_id),
        key_version=key_version,
        ciphertext=ciphertext,
        plaintext=plaintext,
    )


def data_key_plaintext_from_wire(body: Mapping[str, Any]) -> bytes:
    """decrypt-datakey answer, checked against its digest."""
    data_key = _hex_field(body, "data_key")
    digest = body.get("datakey_dgst")
    if digest and not hmac.compare_digest(hashlib.sha256(data_key).hexdigest(), str(digest).lower()):
        raise InvalidCiphertext("the decrypted data key does not match its digest", code="KMS.2203")
    return data_key


def random_answer(data: bytes) -> JsonObject:
    return {"random_data": data.hex()}


def random_from_wire(body: Mapping[str, Any]) -> bytes:
    return _hex_field(body, "random_data")


def quotas_answer(quotas: Sequence[Quota]) -> JsonObject:
    return {"quotas": {"resources": [{"type": q.resource, "used": q.used, "quota": q.limit} for q in quotas]}}


def quotas_from_wire(body: Mapping[str, Any]) -> list[Quota]:
    resources = (body.get("quotas") or {}).get("resources") or []
    return [Quota(resource=str(r["type"]), used=int(r["used"]), limit=int(r["quota"])) for r in resources]


def tags_answer(tags: Mapping[str, str]) -> JsonObject:
    return {"tags": [{"key": k, "value": v} for k, v in sorted(tags.items())], "existTagsNum": len(tags)}


def tags_from_answer(body: Mapping[str, Any]) -> dict[str, str]:
    return {str(item["key"]): str(item.get("value", "")) for item in body.get("tags") or []}


def tag_items(tags: Mapping[str, str]) -> list[JsonObject]:
    return [{"key": k, "value": v} for k, v in tags.items()]


def alias_entity(key_id: str, alias: str, project_id: str) -> JsonObject:
    return {
        "domain_id": project_id,
        "key_id": key_id,
        "alias": alias,
        "alias_urn": f"kms:{project_id}:alias/{alias}",
        "create_time": "",
        "update_time": "",
    }


def aliases_answer(key_id: str, aliases: Sequence[str], project_id: str) -> list[JsonObject]:
    """list-aliases answers a JSON **array** of pages (the SDK's ListAliasesResponse.body)."""
    entities = [alias_entity(key_id, alias, project_id) for alias in aliases]
    return [{"aliases": entities, "page_info": {"next_marker": "", "current_count": len(entities)}}]


def aliases_from_wire(body: object) -> list[str]:
    pages = body if isinstance(body, list) else [body]
    return [str(entity["alias"]) for page in pages if isinstance(page, dict) for entity in page.get("aliases") or []]


# ---------------------------------------------------------------------------- errors

_STATUS_BY_CODE = {"KMS.0215": 405, "KMS.0203": 413}


def error_status(error: KMSError) -> int:
    if error.code in _STATUS_BY_CODE:
        return _STATUS_BY_CODE[error.code]
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, Unauthenticated):
        return 401
    if isinstance(error, AccessDenied):
        return 403
    if isinstance(error, Throttled):
        return 429
    if isinstance(error, Unavailable):
        return 503
    if type(error) is KMSError:
        return 500
    return 400


def error_body(error: KMSError) -> JsonObject:
    return {"error": {"error_code": error.code, "error_msg": error.message}}


# wire code -> our class, for codes whose class is not decided by the HTTP status alone
_CLASS_BY_CODE: dict[str, type[KMSError]] = {
    "KMS.0207": NotFound,
    "KMS.0209": Disabled,
    "KMS.0210": PendingDeletion,
    "KMS.1104": AlreadyExists,
    "KMS.1105": LimitExceeded,
    "KMS.1201": InvalidState,
    "KMS.1301": InvalidState,
    "KMS.1402": InvalidState,
    "KMS.1501": InvalidState,
    "KMS.2201": InvalidCiphertext,
    "KMS.2203": InvalidCiphertext,
    "KMS.2204": InvalidCiphertext,
    "KMS.0104": Unavailable,
    "KMS.0105": Throttled,
}


def error_from_wire(status: int, raw_body: bytes) -> KMSError:
    """An error answer (status >= 400) as our typed error; the message is the server's, never key material."""
    code, message = "", ""
    try:
        error = json.loads(raw_body).get("error") or {}
        code, message = str(error.get("error_code") or ""), str(error.get("error_msg") or "")
    except (ValueError, AttributeError, UnicodeDecodeError, binascii.Error):
        pass
    message = message or f"the KMS answered HTTP {status}"
    cls = _CLASS_BY_CODE.get(code) or _class_by_status(status, code)
    return cls(message, code=code or None)


def _class_by_status(status: int, code: str) -> type[KMSError]:
    if status == 429:
        return Throttled
    if status >= 500:
        return Unavailable
    if status == 401 or code in ("KMS.0301", "KMS.0302", "KMS.0303", "KMS.0304", "KMS.0305"):
        return Unauthenticated
    if status == 403:
        return AccessDenied
    if status == 404:
        return NotFound
    return InvalidArgument
