"""The KMS v1.0 wire's answers, both directions: the server renders them, the client decodes them.

kubekms adds three KeyDetails fields the cloud does not send (``current_version``,
``rotation_interval``, ``last_rotation_time``); decoders default them when absent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives import serialization

from kubekms import ciphertext as ciphertext_format
from kubekms.backend import DataKey, ImportParameters, KeyMetadata, KeyOutput, Quota, RotationStatus
from kubekms.errors import InvalidCiphertext, Unavailable
from kubekms.wire.v1.values import (
    JsonObject,
    from_bool,
    from_millis,
    key_state_from_wire,
    keystore_key_spec,
    to_bool_text,
    to_millis,
    wire_key_spec,
)


def key_details(meta: KeyMetadata, *, project_id: str = "", realm: str = "") -> JsonObject:
    return {
        "key_id": meta.key_id,
        "domain_id": meta.project_id or project_id,
        "key_alias": meta.alias,
        "realm": realm,
        "key_spec": wire_key_spec(meta.key_spec),
        "key_usage": meta.key_usage,
        "key_description": meta.description,
        "creation_date": to_millis(meta.created_at),
        "scheduled_deletion_date": to_millis(meta.deletion_date),
        "key_state": meta.state.value,
        "default_key_flag": "0",
        "key_type": "1",
        "expiration_time": to_millis(meta.material_expires_at),  # imported material's; "" when it never expires
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
        key_spec=keystore_key_spec(str(details.get("key_spec", "AES_256"))),
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


def import_parameters_answer(parameters: ImportParameters) -> JsonObject:
    """get-parameters-for-import: the wrapping public key (DER SubjectPublicKeyInfo) and the token base64,
    ``expiration_time`` in epoch **seconds**, as Huawei answers them."""
    return {
        "key_id": parameters.key_id,
        "import_token": base64.b64encode(parameters.import_token).decode(),
        "expiration_time": int(parameters.valid_to.timestamp()),
        "public_key": base64.b64encode(parameters.public_key).decode(),
    }


def encrypted_data_answer(key_id: str, ciphertext: bytes) -> JsonObject:
    """encrypt-data: the ciphertext base64, as Huawei answers it (its SDK models say hex; their decrypt-data
    takes base64)."""
    return {"key_id": key_id, "cipher_text": base64.b64encode(ciphertext).decode()}


def decrypted_data_answer(key_id: str, plaintext: bytes) -> JsonObject:
    """decrypt-data: ``plain_text`` as text and ``plain_text_base64``, exact when the plaintext is not UTF-8 text."""
    return {
        "key_id": key_id,
        "plain_text": plaintext.decode(errors="replace"),
        "plain_text_base64": base64.b64encode(plaintext).decode(),
    }


def public_key_answer(key_id: str, public_der: bytes) -> JsonObject:
    """get-publickey: the public key as PEM (SubjectPublicKeyInfo), as Huawei answers it."""
    public = serialization.load_der_public_key(public_der)
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return {"key_id": key_id, "public_key": pem.decode()}


def signature_answer(signed: KeyOutput) -> JsonObject:
    return {"key_id": signed.key_id, "signature": base64.b64encode(signed.data).decode()}


def signature_valid_answer(key_id: str, valid: bool) -> JsonObject:
    """verify: Huawei answers a wrong signature with ``signature_valid`` "false", not an error."""
    return {"key_id": key_id, "signature_valid": to_bool_text(valid)}


def mac_answer(made: KeyOutput, algorithm: str) -> JsonObject:
    return {"key_id": made.key_id, "mac_algorithm": algorithm, "mac": base64.b64encode(made.data).decode()}


def mac_valid_answer(key_id: str, algorithm: str, valid: bool) -> JsonObject:
    """verify-mac: ``mac_valid`` is a JSON boolean (unlike verify's string)."""
    return {"key_id": key_id, "mac_algorithm": algorithm, "mac_valid": valid}


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


def aliases_answer(entries: Sequence[tuple[str, str]], project_id: str, next_marker: str = "") -> list[JsonObject]:
    """list-aliases answers a JSON **array** of pages (the SDK's ListAliasesResponse.body): one page here.

    ``entries``: (key id, alias) pairs."""
    entities = [alias_entity(key_id, alias, project_id) for key_id, alias in entries]
    return [{"aliases": entities, "page_info": {"next_marker": next_marker, "current_count": len(entities)}}]


def aliases_from_wire(body: object) -> list[str]:
    pages = body if isinstance(body, list) else [body]
    return [str(entity["alias"]) for page in pages if isinstance(page, dict) for entity in page.get("aliases") or []]
