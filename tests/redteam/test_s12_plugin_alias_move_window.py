"""While a poll follows the configured alias to another backend key, Decrypt of the old key's seeds keeps working.

Keyring.refresh() reset ``latest_version`` to 0 for the new key before it set ``key_id`` to that key: in
between, a Decrypt on a gRPC thread of a seed under the old key's current version (``A:v5``) met
``key_id == A`` with ``latest_version == 0`` and was refused (FAILED_PRECONDITION, "key_id names version 5
but the key's latest version is 0"), although its KEK was in the cache. Setting key_id first is not enough
either: when the alias moves back to A, ``key_id == A`` with B's count (3) refuses ``A:v5`` the same way.
The test checks every state the keyring passes through during both polls.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kubekms.backend import Backend
from kubekms.providers import BackendConfig, open_backend
from kubekms_plugin.config import KekPolicy
from kubekms_plugin.keyring import Keyring, KeyringError, Sealed
from kubekms_plugin.metrics import PluginMetrics

ALIAS = "cluster/secrets"
SEED = bytes(range(32))


class Watched(Keyring):
    """Checks a Decrypt of every ``sealed`` seed after every change of key_id or latest_version (what another
    thread may see between two statements of the poll) and keeps the refusals."""

    sealed: tuple[Sealed, ...] = ()
    refusals: list[str]

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name not in ("key_id", "latest_version"):
            return
        for seed in self.sealed:
            try:
                self.decrypt_now(seed.ciphertext, seed.key_id, seed.wrapped_kek)
            except KeyringError as error:
                self.refusals.append(f"{name}={value!r}, {seed.key_id}: {error.message}")


@pytest.fixture
async def backend(tmp_path: Path) -> AsyncIterator[Backend]:
    opened = await open_backend(BackendConfig(provider="local", state_dir=tmp_path, init=True))
    yield opened
    await opened.close()


async def test_seeds_of_either_key_decrypt_at_every_step_of_alias_moves(backend: Backend) -> None:
    first, second = await backend.create_key("key-one"), await backend.create_key("key-two")
    await backend.create_alias(first.key_id, ALIAS)
    for _ in range(4):
        await backend.rotate_key(first.key_id)  # the first key at version 5
    for _ in range(2):
        await backend.rotate_key(second.key_id)  # the second at version 3: back at the first, 5 > 3
    keyring = Watched(backend, ALIAS, KekPolicy(), PluginMetrics(), backend_name="local")
    keyring.refusals = []
    sealed = []
    for key in (second, first):  # the alias moves to the second key, then back to the first
        await keyring.refresh()
        keyring.announce()
        seed = keyring.encrypt_now(SEED)
        assert seed is not None
        sealed.append(seed)
        keyring.sealed = tuple(sealed)
        await backend.update_alias(ALIAS, key.key_id)
    await keyring.refresh()
    assert [seed.key_id for seed in sealed] == [f"{first.key_id}:v5", f"{second.key_id}:v3"]
    assert keyring.key_id == first.key_id
    assert keyring.refusals == []
    for seed in sealed:
        assert keyring.decrypt_now(seed.ciphertext, seed.key_id, seed.wrapped_kek) == SEED
