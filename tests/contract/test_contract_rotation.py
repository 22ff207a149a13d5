"""Rotation: every rotation adds a version, old ciphertexts keep decrypting."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from kubekms.backend import Backend
from kubekms.errors import InvalidArgument


async def test_rotate_adds_a_version_and_old_ciphertexts_decrypt(backend: Backend, alias: Callable[[str], str]) -> None:
    key = await backend.create_key(alias("rotate"))
    before = await backend.create_data_key(key.key_id, aad=b"a")
    rotated = await backend.rotate_key(key.key_id)
    assert rotated.current_version == 2
    assert rotated.last_rotation_at is not None
    assert abs(rotated.last_rotation_at - datetime.now(UTC)) < timedelta(minutes=1)
    after = await backend.create_data_key(key.key_id, aad=b"a")
    assert (before.key_version, after.key_version) == (1, 2)
    assert await backend.decrypt_data_key(key.key_id, before.ciphertext, aad=b"a") == before.plaintext
    assert await backend.decrypt_data_key(key.key_id, after.ciphertext, aad=b"a") == after.plaintext
    status = await backend.get_rotation_status(key.key_id)
    assert status.number_of_rotations == 1
    assert status.last_rotation_at == rotated.last_rotation_at
    assert (await backend.rotate_key(key.alias)).current_version == 3


async def test_automatic_rotation_settings(backend: Backend, alias: Callable[[str], str]) -> None:
    key = await backend.create_key(alias("auto"))
    assert not (await backend.get_rotation_status(key.key_id)).enabled
    enabled = await backend.set_rotation(key.key_id, enabled=True, interval_days=30)
    assert (enabled.enabled, enabled.interval_days) == (True, 30)
    meta = await backend.describe_key(key.key_id)
    assert (meta.rotation_enabled, meta.rotation_interval_days) == (True, 30)
    disabled = await backend.set_rotation(key.key_id, enabled=False)
    assert (disabled.enabled, disabled.interval_days) == (False, 30)
    assert (await backend.get_rotation_status(key.key_id)).number_of_rotations == 0


@pytest.mark.parametrize("days", [0, 3651])
async def test_rotation_interval_out_of_range(backend: Backend, alias: Callable[[str], str], days: int) -> None:
    key = await backend.create_key(alias("interval"))
    with pytest.raises(InvalidArgument):
        await backend.set_rotation(key.key_id, enabled=True, interval_days=days)
    assert (await backend.get_rotation_status(key.key_id)).interval_days != days
