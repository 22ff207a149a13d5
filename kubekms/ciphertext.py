"""The self-describing binary format of kubekms data-key ciphertexts.

Layout (big-endian)::

    magic "KK" | format version (1 byte) | key id length (1 byte) | key id (UTF-8)
    | key version (4 bytes) | nonce (12 bytes) | AES-256-GCM ciphertext with 16-byte tag

The header (everything before the sealed bytes) is authenticated together with the
caller's additional data, so a flipped bit anywhere fails decryption. Parsing never
raises anything but :class:`~kubekms.errors.InvalidCiphertext`.
"""

from __future__ import annotations

import os
import struct
from typing import NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kubekms.errors import InvalidCiphertext

MAGIC = b"KK"
FORMAT_VERSION = 1
NONCE_SIZE = 12
TAG_SIZE = 16
MAX_KEY_ID_LENGTH = 255
_VERSION_FIELD = struct.Struct(">I")


class Envelope(NamedTuple):  # a tuple: a third of a frozen dataclass's construction (every Decrypt parses one)
    key_id: str
    key_version: int
    nonce: bytes
    sealed: bytes
    raw_header: bytes = b""  # the header's bytes as parsed (the same as header() builds: every Decrypt asks)

    def header(self) -> bytes:
        return self.raw_header or _header(self.key_id.encode(), self.key_version, self.nonce)

    def encode(self) -> bytes:
        return self.header() + self.sealed


def parse(blob: bytes) -> Envelope:
    """Split a ciphertext into its fields; any malformation is InvalidCiphertext."""
    if len(blob) < 4 or blob[:2] != MAGIC:
        raise InvalidCiphertext("ciphertext is not a kubekms data-key ciphertext")
    if blob[2] != FORMAT_VERSION:
        raise InvalidCiphertext(f"unsupported ciphertext format version {blob[2]}")
    key_id_end = 4 + blob[3]
    sealed_start = key_id_end + _VERSION_FIELD.size + NONCE_SIZE
    if len(blob) < sealed_start + TAG_SIZE:
        raise InvalidCiphertext("ciphertext is truncated")
    try:
        key_id = blob[4:key_id_end].decode()
    except UnicodeDecodeError:
        raise InvalidCiphertext("ciphertext names an invalid key id") from None
    (key_version,) = _VERSION_FIELD.unpack_from(blob, key_id_end)
    nonce = blob[key_id_end + _VERSION_FIELD.size : sealed_start]
    return Envelope(key_id, key_version, nonce, blob[sealed_start:], blob[:sealed_start])


def _header(key_id: bytes, key_version: int, nonce: bytes) -> bytes:
    return MAGIC + bytes([FORMAT_VERSION, len(key_id)]) + key_id + _VERSION_FIELD.pack(key_version) + nonce


def seal(cipher: AESGCM, key_id: str, key_version: int, plaintext: bytes, aad: bytes) -> bytes:
    """Encrypt ``plaintext`` under one key version; returns the encoded ciphertext."""
    encoded_id = key_id.encode()
    if len(encoded_id) > MAX_KEY_ID_LENGTH:
        raise ValueError("key id too long for the ciphertext format")
    # one read of the kernel's random source per seal, never a pool in the process: a VM snapshot or a restored
    # checkpoint of a running server would seal with the same pooled nonces in both copies (AES-GCM nonce reuse),
    # while the kernel reseeds its source on such a clone
    nonce = os.urandom(NONCE_SIZE)
    header = _header(encoded_id, key_version, nonce)  # built once: it is also the start of the additional data
    return header + cipher.encrypt(nonce, plaintext, header + aad)


def open_sealed(cipher: AESGCM, envelope: Envelope, aad: bytes) -> bytes:
    try:
        return cipher.decrypt(envelope.nonce, envelope.sealed, envelope.header() + aad)
    except InvalidTag:
        raise InvalidCiphertext("ciphertext failed authentication (tampered, or wrong additional data)") from None
