"""Decoding kube-apiserver's stored KMS v2 values (the real format is checked end to end)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubekms.devenv import encrypted_object


def _field(number: int, payload: bytes) -> bytes:
    length, encoded = len(payload), b""
    while True:
        byte = length & 0x7F
        length >>= 7
        encoded += bytes([byte | (0x80 if length else 0)])
        if not length:
            break
    return bytes([number << 3 | 2]) + encoded + payload


def test_reads_key_id_and_annotations() -> None:
    annotation = _field(1, b"kek.kubekms.io") + _field(2, b"\x01\x02")
    message = _field(1, b"data") + _field(2, b"key-1:v2") + _field(3, b"seed" * 40) + _field(4, annotation)
    parsed = encrypted_object.parse(b"k8s:enc:kms:v2:kubekms:" + message)
    assert (parsed.provider, parsed.key_id) == ("kubekms", "key-1:v2")
    assert parsed.annotations == {"kek.kubekms.io": b"\x01\x02"}
    assert parsed.encrypted_dek_source == b"seed" * 40


def test_plaintext_is_not_an_envelope() -> None:
    with pytest.raises(encrypted_object.NotKMSv2):
        encrypted_object.parse(b"k8s\x00\x0a\x0c\x0a\x02v1\x12\x06Secret")


# no per-example deadline: Hypothesis's 200 ms (a wall-clock bound) fails as Flaky when a loaded CI machine stalls once
NO_DEADLINE = settings(deadline=None)


@NO_DEADLINE
@given(garbage=st.binary(max_size=300))
def test_garbage_after_the_prefix_fails_cleanly(garbage: bytes) -> None:
    with contextlib.suppress(encrypted_object.NotKMSv2):  # anything else escapes and fails the test
        encrypted_object.parse(b"k8s:enc:kms:v2:kubekms:" + garbage)
