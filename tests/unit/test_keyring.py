"""The plugin's Keyring without gRPC: KEK rollover, cache eviction, version retirement, failures.

The backend is the real keystore (provider local) behind :class:`Recording`, and the clock is
the keyring's injectable one, so KEK ages are exact and no test sleeps.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kubekms import plugin_ciphertext
from kubekms.backend import Backend, DataKey
from kubekms.errors import KMSError, Unavailable
from kubekms.providers import BackendConfig, open_backend
from kubekms_plugin.config import KekPolicy
from kubekms_plugin.keyring import BackendFailure, BadCiphertext, ForeignKeyId, KeyNotEnabled, Keyring
from kubekms_plugin.metrics import PluginMetrics

ALIAS = "plugin/unit"
SEED = bytes(range(32))


class Recording:
    """A fake layer over the real backend: the only way to count the keyring's backend calls and
    to make one fail deterministically (a real backend cannot be told to fail the next call)."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self.calls: dict[str, int] = {"describe_key": 0, "create_data_key": 0, "decrypt_data_key": 0}
        self.fail_next: KMSError | None = None

    def _count(self, name: str) -> None:
        self.calls[name] += 1
        failure, self.fail_next = self.fail_next, None
        if failure is not None:
            raise failure

    async def describe_key(self, key_id: str) -> Any:
        self._count("describe_key")
        return await self._backend.describe_key(key_id)

    async def create_data_key(self, key_id: str, *, length: int = 32, aad: bytes = b"") -> DataKey:
        self._count("create_data_key")
        return await self._backend.create_data_key(key_id, length=length, aad=aad)

    async def decrypt_data_key(self, key_id: str, ciphertext: bytes, *, aad: bytes = b"") -> bytes:
        self._count("decrypt_data_key")
        return await self._backend.decrypt_data_key(key_id, ciphertext, aad=aad)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def backend(tmp_path: Path) -> AsyncIterator[Backend]:
    opened = await open_backend(BackendConfig(provider="local", state_dir=tmp_path, init=True))
    await opened.create_key(ALIAS)
    yield opened
    await opened.close()


def make_keyring(backend: Backend, clock: Clock, **policy: Any) -> tuple[Keyring, Recording]:
    recording = Recording(backend)
    keyring = Keyring(
        cast(Backend, recording), ALIAS, KekPolicy(**policy), PluginMetrics(), backend_name="local", clock=clock
    )
    return keyring, recording


async def test_a_kek_rolls_over_after_max_encryptions(backend: Backend) -> None:
    keyring, recording = make_keyring(backend, Clock(), max_encryptions=3)
    await keyring.refresh()
    sealed = [await keyring.encrypt(SEED) for _ in range(4)]
    assert len({s.wrapped_kek for s in sealed[:3]}) == 1  # three encryptions under one KEK
    assert sealed[3].wrapped_kek != sealed[0].wrapped_kek
    assert recording.calls["create_data_key"] == 2
    assert {s.key_id for s in sealed} == {keyring.reported_key_id()}  # same key version, same key_id
    for item in sealed:
        assert await keyring.decrypt(item.ciphertext, item.key_id, item.wrapped_kek) == SEED
    assert recording.calls["decrypt_data_key"] == 0  # both KEKs were still cached


async def test_a_kek_rolls_over_after_max_age(backend: Backend) -> None:
    clock = Clock()
    keyring, recording = make_keyring(backend, clock, max_age=3600.0)
    await keyring.refresh()
    first = await keyring.encrypt(SEED)
    clock.now += 3599.0
    assert (await keyring.encrypt(SEED)).wrapped_kek == first.wrapped_kek
    assert keyring.health() == "ok"
    clock.now += 1.0
    assert keyring.health() != "ok"  # too old to encrypt with: health says so before the next poll
    second = await keyring.encrypt(SEED)
    assert second.wrapped_kek != first.wrapped_kek
    assert recording.calls["create_data_key"] == 2
    assert keyring.health() == "ok"


async def test_the_kek_cache_evicts_the_least_recently_used(backend: Backend) -> None:
    keyring, recording = make_keyring(backend, Clock(), max_encryptions=1, cache_size=2)
    await keyring.refresh()
    a, b, c = [await keyring.encrypt(SEED) for _ in range(3)]  # three KEKs, the cache holds two
    assert len({a.wrapped_kek, b.wrapped_kek, c.wrapped_kek}) == 3

    assert await keyring.decrypt(c.ciphertext, c.key_id, c.wrapped_kek) == SEED
    assert await keyring.decrypt(b.ciphertext, b.key_id, b.wrapped_kek) == SEED
    assert recording.calls["decrypt_data_key"] == 0
    assert await keyring.decrypt(a.ciphertext, a.key_id, a.wrapped_kek) == SEED  # evicted: unwrapped again
    assert recording.calls["decrypt_data_key"] == 1
    # a is now cached and b the most recently used before it: c was evicted, b was not.
    assert await keyring.decrypt(b.ciphertext, b.key_id, b.wrapped_kek) == SEED
    assert recording.calls["decrypt_data_key"] == 1
    assert await keyring.decrypt(c.ciphertext, c.key_id, c.wrapped_kek) == SEED
    assert recording.calls["decrypt_data_key"] == 2


async def test_a_rotation_retires_the_old_version_once_announced(backend: Backend) -> None:
    keyring, recording = make_keyring(backend, Clock())
    await keyring.refresh()
    v1_key_id = keyring.announce()
    old = await keyring.encrypt(SEED)
    assert old.key_id == v1_key_id and v1_key_id.endswith(":v1")

    key_id = (await backend.describe_key(ALIAS)).key_id
    await backend.rotate_key(key_id)
    await keyring.refresh()
    assert keyring.reported_key_id() == plugin_ciphertext.key_id(key_id, 2)
    assert (await keyring.encrypt(SEED)).key_id == v1_key_id  # the apiserver has not heard of v2 yet
    assert keyring.announce() == plugin_ciphertext.key_id(key_id, 2)
    new = await keyring.encrypt(SEED)
    assert new.key_id.endswith(":v2") and new.wrapped_kek != old.wrapped_kek
    assert recording.calls["create_data_key"] == 2

    # Seeds sealed under the retired version still open; a version the key never had is refused.
    assert await keyring.decrypt(old.ciphertext, old.key_id, old.wrapped_kek) == SEED
    with pytest.raises(ForeignKeyId, match="latest version is 2"):
        await keyring.decrypt(new.ciphertext, plugin_ciphertext.key_id(key_id, 3), new.wrapped_kek)
    with pytest.raises(ForeignKeyId, match="not issued by this plugin"):
        await keyring.decrypt(new.ciphertext, "other-key:v2", new.wrapped_kek)
    # Sealed under v2, presented as v1: the key_id is bound to the seal.
    with pytest.raises(BadCiphertext, match="failed authentication"):
        await keyring.decrypt(new.ciphertext, old.key_id, new.wrapped_kek)


async def test_backend_failures_are_domain_errors_and_health_reports_them(backend: Backend) -> None:
    keyring, recording = make_keyring(backend, Clock())
    recording.fail_next = Unavailable("connection refused")
    with pytest.raises(BackendFailure) as failure:
        await keyring.refresh()
    assert failure.value.retryable
    assert keyring.health() == f"no usable KEK: {failure.value.message}"
    await keyring.refresh()
    assert keyring.health() == "ok"

    sealed = await keyring.encrypt(SEED)
    # A well-formed ciphertext under a KEK the backend never wrapped.
    forged = plugin_ciphertext.seal(AESGCM(bytes(32)), SEED, sealed.key_id.encode())
    with pytest.raises(BadCiphertext, match="failed authentication"):
        await keyring.decrypt(forged, sealed.key_id, sealed.wrapped_kek)
    with pytest.raises(BadCiphertext, match="format or length"):
        await keyring.decrypt(b"\x02" + sealed.ciphertext[1:], sealed.key_id, sealed.wrapped_kek)
    with pytest.raises(BadCiphertext, match="not a KEK wrapped by this key"):
        tampered = sealed.wrapped_kek[:-1] + bytes([sealed.wrapped_kek[-1] ^ 1])  # "+ b'\x00'" was a no-op 1 in 256
        await keyring.decrypt(sealed.ciphertext, sealed.key_id, tampered)
    assert keyring.health() == "ok"  # the caller's bad annotation is not a backend failure

    await backend.disable_key((await backend.describe_key(ALIAS)).key_id)
    await keyring.refresh()
    with pytest.raises(KeyNotEnabled, match="disabled"):
        await keyring.encrypt(SEED)
