"""The byte format of what the KMS v2 plugin hands kube-apiserver: a sealed DEK seed and its annotation.

kube-apiserver stores three things per DEK seed it has the plugin encrypt, and gives all three
back on Decrypt:

``ciphertext`` (at most 1 KiB)::

    format (1 byte, = 1) | nonce (12 bytes) | AES-256-GCM(KEK, seed) with its 16-byte tag

    the AES-GCM associated data is the UTF-8 ``key_id`` below, so a ciphertext presented under
    another key_id fails authentication.

``key_id``: ``<backend key id>:v<version>`` (version 1 to 9,999,999,999, no leading zero); a new
    backend key version means a new KEK and a new key_id, so the key_id changes on every rotation.

``annotations``: exactly one, ``kek.kubekms.io`` = the KEK as wrapped by the backend key
    (the backend's own data-key ciphertext, made with :data:`KEK_AAD` as additional data so a
    wrapped KEK is useless for any other purpose of the same backend key).

Every way a ciphertext can be wrong raises :class:`~kubekms.errors.InvalidCiphertext`, never an
IndexError. The data-key format of the kubekms server itself is :mod:`kubekms.ciphertext`.
"""

from __future__ import annotations

import hashlib
import os
import re

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kubekms.errors import InvalidCiphertext

FORMAT = 1
NONCE_SIZE = 12
TAG_SIZE = 16
MIN_SIZE = 1 + NONCE_SIZE + TAG_SIZE
KEK_ANNOTATION = "kek.kubekms.io"
KEK_AAD = b"kubekms.io/plugin-kek/v1"
_FORMAT_BYTE = bytes([FORMAT])
_KEY_ID = re.compile(r"(.+):v([1-9][0-9]{0,9})")  # fullmatch: "$" would allow a trailing newline


def key_id(backend_key_id: str, version: int) -> str:
    """The key_id for a backend key at a version."""
    return f"{backend_key_id}:v{version}"


def key_id_hash(value: str) -> str:
    """How kube-apiserver labels a key_id in its envelope-encryption metrics (the plugin uses the same form)."""
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()


def parse_key_id(value: str) -> tuple[str, int] | None:
    """``(backend key id, version)`` of a well-formed key_id, else None."""
    match = _KEY_ID.fullmatch(value)
    if match is None:
        return None
    return match.group(1), int(match.group(2))


def check_layout(ciphertext: bytes) -> None:
    """Refuse what cannot be a plugin ciphertext, before any key is looked up."""
    if len(ciphertext) < MIN_SIZE or ciphertext[0] != FORMAT:
        raise InvalidCiphertext("ciphertext is not a kubekms plugin ciphertext (format or length)")


def seal(kek: AESGCM, seed: bytes, key_id_bytes: bytes) -> bytes:
    """Encrypt a DEK seed under a KEK, bound to the UTF-8 key_id."""
    nonce = os.urandom(NONCE_SIZE)
    return _FORMAT_BYTE + nonce + kek.encrypt(nonce, seed, key_id_bytes)


def open_sealed(kek: AESGCM, ciphertext: bytes, key_id_bytes: bytes) -> bytes:
    """The seed of a ciphertext whose layout :func:`check_layout` accepted."""
    try:
        return kek.decrypt(ciphertext[1 : 1 + NONCE_SIZE], ciphertext[1 + NONCE_SIZE :], key_id_bytes)
    except InvalidTag:
        raise InvalidCiphertext(
            "ciphertext failed authentication: tampered, or not made with this key_id and KEK"
        ) from None
