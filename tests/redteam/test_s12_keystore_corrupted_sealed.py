"""A corrupted sealed row is the keystore's clear error (wrong root key or corrupted store), whatever its damage.

A flipped bit was already refused by the AEAD tag; a row cut shorter than a nonce (a torn copy, a restore from a
damaged backup, a blob emptied by hand) reached AESGCM with a nonce of the wrong length and came out as a bare
ValueError ("Nonce must be between 8 and 128 bytes"), for a key's version at each request and for the root check
when the keystore opened.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from kubekms.keystore import Keystore
from kubekms.keystore.rootkey import KeystoreSetupError


def _set(directory: Path, sql: str, params: tuple[object, ...]) -> None:
    connection = sqlite3.connect(directory / "keystore.db")
    try:
        with connection:
            connection.execute(sql, params)
    finally:
        connection.close()


def _sealed(directory: Path, key_id: str) -> bytes:
    connection = sqlite3.connect(directory / "keystore.db")
    try:
        (blob,) = connection.execute("SELECT sealed FROM key_versions WHERE key_id = ?", (key_id,)).fetchone()
    finally:
        connection.close()
    return bytes(blob)


def _flip(blob: bytes, index: int) -> bytes:
    return blob[:index] + bytes([blob[index] ^ 1]) + blob[index + 1 :]


@pytest.mark.parametrize("damage", ["empty", "5 bytes", "11 bytes", "nonce only", "bit in nonce", "bit in tag"])
def test_a_damaged_version_row_is_a_clear_error(tmp_path: Path, damage: str) -> None:
    directory = tmp_path / "ks"
    store = Keystore(directory, init=True)
    key_id = store.create_key("damaged").key_id
    store.close()
    blob = _sealed(directory, key_id)
    damaged = {
        "empty": b"",
        "5 bytes": blob[:5],
        "11 bytes": blob[:11],
        "nonce only": blob[:12],
        "bit in nonce": _flip(blob, 3),
        "bit in tag": _flip(blob, len(blob) - 1),
    }[damage]
    _set(directory, "UPDATE key_versions SET sealed = ? WHERE key_id = ?", (damaged, key_id))
    store = Keystore(directory)
    try:
        with pytest.raises(KeystoreSetupError, match="corrupted store"):
            store.encrypt_data_key(key_id, b"p" * 32)
    finally:
        store.close()


@pytest.mark.parametrize("length", [0, 7, 11])
def test_a_damaged_root_check_is_a_clear_error_at_open(tmp_path: Path, length: int) -> None:
    directory = tmp_path / "ks"
    Keystore(directory, init=True).close()
    _set(directory, "UPDATE meta SET value = ? WHERE name = 'root_check'", (b"\0" * length,))
    with pytest.raises(KeystoreSetupError, match="corrupted store"):
        Keystore(directory)
