"""Data keys and randomness: round trips, aad binding, tampering, for every provider."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from kubekms.backend import Backend
from kubekms.errors import InvalidArgument, InvalidCiphertext, Reason


@pytest.mark.parametrize("length", [16, 32, 64])
async def test_data_key_round_trip(backend: Backend, alias: Callable[[str], str], length: int) -> None:
    key = await backend.create_key(alias("dk"))
    data_key = await backend.create_data_key(key.key_id, length=length)
    assert data_key.plaintext is not None and len(data_key.plaintext) == length
    assert data_key.key_id == key.key_id
    assert data_key.key_version == 1
    assert data_key.plaintext not in data_key.ciphertext
    assert await backend.decrypt_data_key(key.key_id, data_key.ciphertext) == data_key.plaintext
    assert await backend.decrypt_data_key(key.alias, data_key.ciphertext) == data_key.plaintext


async def test_data_keys_are_fresh(backend: Backend, alias: Callable[[str], str]) -> None:
    key = await backend.create_key(alias("fresh"))
    first, second = await backend.create_data_key(key.key_id), await backend.create_data_key(key.key_id)
    assert first.plaintext != second.plaintext
    assert first.ciphertext != second.ciphertext


async def test_without_plaintext(backend: Backend, alias: Callable[[str], str]) -> None:
    key = await backend.create_key(alias("noplain"))
    data_key = await backend.create_data_key_without_plaintext(key.key_id, length=24)
    assert data_key.plaintext is None
    assert len(await backend.decrypt_data_key(key.key_id, data_key.ciphertext)) == 24


async def test_encrypt_given_data_key(backend: Backend, alias: Callable[[str], str]) -> None:
    key = await backend.create_key(alias("encrypt"))
    secret = bytes(range(32))
    wrapped = await backend.encrypt_data_key(key.key_id, secret, aad=b"ctx")
    assert wrapped.plaintext is None or wrapped.plaintext == secret
    assert secret not in wrapped.ciphertext
    assert await backend.decrypt_data_key(key.key_id, wrapped.ciphertext, aad=b"ctx") == secret


async def test_aad_binds_the_ciphertext(backend: Backend, alias: Callable[[str], str]) -> None:
    key = await backend.create_key(alias("aad"))
    with_aad = await backend.create_data_key(key.key_id, aad=b"namespace=a")
    assert await backend.decrypt_data_key(key.key_id, with_aad.ciphertext, aad=b"namespace=a") == with_aad.plaintext
    for wrong in (b"namespace=b", b""):
        with pytest.raises(InvalidCiphertext):
            await backend.decrypt_data_key(key.key_id, with_aad.ciphertext, aad=wrong)
    without_aad = await backend.create_data_key(key.key_id)
    with pytest.raises(InvalidCiphertext):
        await backend.decrypt_data_key(key.key_id, without_aad.ciphertext, aad=b"namespace=a")


async def test_tampered_truncated_and_foreign_ciphertexts(backend: Backend, alias: Callable[[str], str]) -> None:
    key, other = await backend.create_key(alias("tamper")), await backend.create_key(alias("other"))
    data_key = await backend.create_data_key(key.key_id)
    blob = data_key.ciphertext
    flipped = blob[:-1] + bytes([blob[-1] ^ 1])
    for bad in (flipped, blob[: len(blob) // 2], blob[:1], b"\x00" * len(blob)):
        with pytest.raises(InvalidCiphertext):
            await backend.decrypt_data_key(key.key_id, bad)
    with pytest.raises(InvalidCiphertext):
        await backend.decrypt_data_key(other.key_id, blob)


@pytest.mark.parametrize("length", [0, 1025])
async def test_data_key_length_out_of_range(backend: Backend, alias: Callable[[str], str], length: int) -> None:
    key = await backend.create_key(alias("length"))
    with pytest.raises(InvalidArgument):
        await backend.create_data_key(key.key_id, length=length)


@pytest.mark.parametrize("length", [1, 32, 1024])
async def test_random_lengths(backend: Backend, length: int) -> None:
    first, second = await backend.generate_random(length), await backend.generate_random(length)
    assert len(first) == len(second) == length
    if length >= 16:
        assert first != second


@pytest.mark.parametrize("length", [0, 1025])
async def test_random_length_out_of_range(backend: Backend, length: int) -> None:
    with pytest.raises(InvalidArgument) as refused:
        await backend.generate_random(length)
    assert refused.value.reason is Reason.RANDOM_LENGTH_INVALID
