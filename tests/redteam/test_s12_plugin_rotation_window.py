"""While the plugin makes the KEK of a new key version, it stays healthy and keeps encrypting under the old one.

A poll that learned of a rotation raised the keyring's latest version first and only then asked the
backend for the new version's KEK. For that whole call the current KEK counted as unusable: Status
answered unhealthy and an Encrypt had to wait for the backend, on every rotation; with a slow or
failing data-key call (throttling, a timeout) for as long as it lasted, although the old version's
KEK encrypts as well as ever and Status still announces it (kube-apiserver's key_id). Expected:
healthy throughout, Encrypt from memory under the announced key_id, the new key_id once its KEK exists.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest

from kubekms.backend import Backend, DataKey
from kubekms.errors import Throttled
from kubekms.providers import BackendConfig, open_backend
from kubekms_plugin.config import KekPolicy
from kubekms_plugin.keyring import Keyring
from kubekms_plugin.metrics import PluginMetrics

ALIAS = "cluster/secrets"
SEED = bytes(range(32))


class HeldDataKeys:
    """The local backend, whose create_data_key waits until ``release`` is set (or fails with ``failure``)."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.failure: Exception | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)

    async def create_data_key(self, key_id: str, *, length: int = 32, aad: bytes = b"") -> DataKey:
        self.entered.set()
        await self.release.wait()
        if self.failure is not None:
            raise self.failure
        return await self._backend.create_data_key(key_id, length=length, aad=aad)


@pytest.fixture
async def backend(tmp_path: Path) -> AsyncIterator[Backend]:
    opened = await open_backend(BackendConfig(provider="local", state_dir=tmp_path, init=True))
    await opened.create_key(ALIAS)
    yield opened
    await opened.close()


async def rotated_keyring(backend: Backend) -> tuple[Keyring, HeldDataKeys, str]:
    held = HeldDataKeys(backend)
    keyring = Keyring(cast(Backend, held), ALIAS, KekPolicy(), PluginMetrics(), backend_name="local")
    held.release.set()
    await keyring.refresh()
    announced = keyring.announce()
    held.release.clear()
    held.entered.clear()
    await backend.rotate_key(ALIAS)
    return keyring, held, announced


async def test_healthy_and_encrypting_while_the_new_versions_kek_is_made(backend: Backend) -> None:
    keyring, held, announced = await rotated_keyring(backend)
    poll = asyncio.create_task(keyring.refresh())
    await asyncio.wait_for(held.entered.wait(), 10)  # the poll waits for the new version's KEK
    assert keyring.health() == "ok"
    sealed = keyring.encrypt_now(SEED)  # from memory, no backend call
    assert sealed is not None and sealed.key_id == announced and announced.endswith(":v1")
    assert keyring.announce() == announced  # Status keeps the old key_id until the new KEK exists
    held.release.set()
    await poll
    assert keyring.announce().endswith(":v2") and keyring.health() == "ok"
    assert keyring.decrypt_now(sealed.ciphertext, sealed.key_id, sealed.wrapped_kek) == SEED


async def test_a_failing_data_key_call_after_a_rotation_leaves_the_old_version_working(backend: Backend) -> None:
    keyring, held, announced = await rotated_keyring(backend)
    held.failure = Throttled("rate exceeded")
    held.release.set()
    with pytest.raises(Exception, match="rate exceeded"):
        await keyring.refresh()
    assert keyring.health() == "ok"
    sealed = keyring.encrypt_now(SEED)
    assert sealed is not None and sealed.key_id == announced
    held.failure = None
    await keyring.refresh()  # the next poll makes it
    assert keyring.announce().endswith(":v2")
