"""The data-key ciphertext format: round trips, and every bit flip or truncation is refused."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from kubekms import ciphertext
from kubekms.errors import InvalidCiphertext

CIPHER = AESGCM(os.urandom(32))
KEY_ID = "0f8fad5b-d9cb-469f-a165-70867728950e"

plaintexts = st.binary(min_size=1, max_size=256)
aads = st.binary(max_size=64)


# no per-example deadline: Hypothesis's 200 ms (a wall-clock bound) fails as Flaky when a loaded CI machine stalls once
NO_DEADLINE = settings(deadline=None)


@NO_DEADLINE
@given(plaintext=plaintexts, aad=aads, version=st.integers(min_value=1, max_value=2**32 - 1))
def test_round_trip_keeps_plaintext_and_header(plaintext: bytes, aad: bytes, version: int) -> None:
    blob = ciphertext.seal(CIPHER, KEY_ID, version, plaintext, aad)
    envelope = ciphertext.parse(blob)
    assert (envelope.key_id, envelope.key_version) == (KEY_ID, version)
    assert ciphertext.open_sealed(CIPHER, envelope, aad) == plaintext


@NO_DEADLINE
@given(plaintext=plaintexts, aad=aads, data=st.data())
def test_any_bit_flip_is_refused(plaintext: bytes, aad: bytes, data: st.DataObject) -> None:
    blob = bytearray(ciphertext.seal(CIPHER, KEY_ID, 1, plaintext, aad))
    bit = data.draw(st.integers(min_value=0, max_value=len(blob) * 8 - 1))
    blob[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(InvalidCiphertext):
        ciphertext.open_sealed(CIPHER, ciphertext.parse(bytes(blob)), aad)


@NO_DEADLINE
@given(plaintext=plaintexts, aad=aads, data=st.data())
def test_any_truncation_is_refused(plaintext: bytes, aad: bytes, data: st.DataObject) -> None:
    blob = ciphertext.seal(CIPHER, KEY_ID, 1, plaintext, aad)
    cut = data.draw(st.integers(min_value=0, max_value=len(blob) - 1))
    with pytest.raises(InvalidCiphertext):
        ciphertext.open_sealed(CIPHER, ciphertext.parse(blob[:cut]), aad)


@NO_DEADLINE
@given(garbage=st.binary(max_size=200))
def test_garbage_never_raises_anything_but_invalid_ciphertext(garbage: bytes) -> None:
    with pytest.raises(InvalidCiphertext):
        ciphertext.open_sealed(CIPHER, ciphertext.parse(garbage), b"")


def test_wrong_additional_data_is_refused() -> None:
    blob = ciphertext.seal(CIPHER, KEY_ID, 1, b"secret", b"context-a")
    with pytest.raises(InvalidCiphertext, match="authentication"):
        ciphertext.open_sealed(CIPHER, ciphertext.parse(blob), b"context-b")


def test_nonce_is_fresh_every_time() -> None:
    first = ciphertext.parse(ciphertext.seal(CIPHER, KEY_ID, 1, b"same", b""))
    second = ciphertext.parse(ciphertext.seal(CIPHER, KEY_ID, 1, b"same", b""))
    assert first.nonce != second.nonce
    assert first.sealed != second.sealed
