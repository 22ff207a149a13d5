"""Read what kube-apiserver's KMS v2 provider stores in etcd: evidence for the demo and tests.

A stored value is ``k8s:enc:kms:v2:<provider name>:`` followed by the protobuf message
``EncryptedObject`` of ``k8s.io/apiserver/.../kmsv2/v2`` (encryptedData = 1, keyID = 2,
encryptedDEKSource = 3, annotations = 4, encryptedDEKSourceType = 5). Only the
protobuf wire format is needed to read it, so it is decoded here directly rather than
by vendoring apiserver's .proto.
"""

from __future__ import annotations

from dataclasses import dataclass, field

KMS_V2_PREFIX = b"k8s:enc:kms:v2:"


class NotKMSv2(ValueError):
    """The value is not a KMS v2 envelope (plaintext, another provider, or corrupt)."""


@dataclass(frozen=True)
class EncryptedObject:
    provider: str
    key_id: str
    encrypted_data: bytes = field(repr=False)
    encrypted_dek_source: bytes = field(repr=False)
    annotations: dict[str, bytes]


def _varint(data: bytes, position: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if position >= len(data) or shift > 63:
            raise NotKMSv2("truncated varint")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, position


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    fields: list[tuple[int, int | bytes]] = []
    position = 0
    while position < len(data):
        tag, position = _varint(data, position)
        number, wire_type = tag >> 3, tag & 7
        if wire_type == 0:
            value, position = _varint(data, position)
            fields.append((number, value))
        elif wire_type == 2:
            length, position = _varint(data, position)
            if position + length > len(data):
                raise NotKMSv2("truncated field")
            fields.append((number, data[position : position + length]))
            position += length
        else:
            raise NotKMSv2(f"unexpected wire type {wire_type}")
    return fields


def parse(stored: bytes) -> EncryptedObject:
    if not stored.startswith(KMS_V2_PREFIX):
        raise NotKMSv2("value does not start with k8s:enc:kms:v2:")
    provider, separator, message = stored[len(KMS_V2_PREFIX) :].partition(b":")
    if not separator:
        raise NotKMSv2("no provider name")
    values: dict[int, bytes] = {}
    annotations: dict[str, bytes] = {}
    for number, value in _fields(message):
        if number == 4 and isinstance(value, bytes):
            entry = dict(_fields(value))
            key, item = entry.get(1, b""), entry.get(2, b"")
            if isinstance(key, bytes) and isinstance(item, bytes):
                annotations[key.decode(errors="replace")] = item
        elif isinstance(value, bytes):
            values[number] = value
    try:
        return EncryptedObject(
            provider=provider.decode(),
            key_id=values.get(2, b"").decode(),
            encrypted_data=values.get(1, b""),
            encrypted_dek_source=values.get(3, b""),
            annotations=annotations,
        )
    except UnicodeDecodeError:
        raise NotKMSv2("provider name or key id is not UTF-8") from None
