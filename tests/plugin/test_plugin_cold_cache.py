"""A cold KEK cache asked for many Decrypts at once, as a restarted kube-apiserver does: one
backend unwrap per wrapped KEK, not one per waiting call, and a waiter that gives up does not
take the unwrap away from the others. The Keyring in this process, over HTTP to a real server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from kubekms.backend import Backend
from kubekms.devenv.kmsserver import KMSServer
from kubekms.providers import open_backend
from kubekms_plugin.config import KekPolicy
from kubekms_plugin.keyring import Keyring, Sealed
from kubekms_plugin.metrics import PluginMetrics

CALLERS = 16
SEEDS = [bytes([index]) * 32 for index in range(4)]


@pytest.fixture
async def backend(server: KMSServer) -> AsyncIterator[Backend]:
    opened = await open_backend(server.backend_config("plugin"))
    yield opened
    await opened.close()


async def cold_keyring(backend: Backend, alias: str) -> tuple[Keyring, list[Sealed], PluginMetrics]:
    """Seeds sealed by one keyring, and a second keyring (an empty cache: a restarted plugin)."""
    warm = Keyring(backend, alias, KekPolicy(), PluginMetrics(), backend_name="kubekms")
    await warm.refresh()
    sealed = [await warm.encrypt(seed) for seed in SEEDS]
    metrics = PluginMetrics()
    cold = Keyring(backend, alias, KekPolicy(), metrics, backend_name="kubekms")
    await cold.refresh()
    return cold, sealed, metrics


def unwraps(metrics: PluginMetrics) -> float | None:
    labels = {"operation": "decrypt-datakey", "result": "ok"}
    return metrics.registry.get_sample_value("kubekms_plugin_backend_calls_total", labels)


async def test_concurrent_decrypts_of_one_kek_make_one_backend_call(backend: Backend, key_alias: str) -> None:
    keyring, sealed, metrics = await cold_keyring(backend, key_alias)
    assert len({one.wrapped_kek for one in sealed}) == 1  # the four seeds share one KEK
    calls = [keyring.decrypt(one.ciphertext, one.key_id, one.wrapped_kek) for one in sealed * (CALLERS // 4)]
    assert await asyncio.gather(*calls) == SEEDS * (CALLERS // 4)
    assert unwraps(metrics) == 1.0
    await keyring.decrypt(sealed[0].ciphertext, sealed[0].key_id, sealed[0].wrapped_kek)  # cached now
    assert unwraps(metrics) == 1.0


async def test_a_cancelled_waiter_leaves_the_unwrap_to_the_others(backend: Backend, key_alias: str) -> None:
    keyring, sealed, metrics = await cold_keyring(backend, key_alias)
    one = sealed[0]
    first = asyncio.create_task(keyring.decrypt(one.ciphertext, one.key_id, one.wrapped_kek))
    second = asyncio.create_task(keyring.decrypt(one.ciphertext, one.key_id, one.wrapped_kek))
    await asyncio.sleep(0)  # both tasks run up to their wait for the backend's answer
    assert len(keyring._unwrapping) == 1  # one unwrap in flight, shared: what the cancellation must not end
    first.cancel()  # its caller's deadline
    assert await second == SEEDS[0]
    assert first.cancelled()
    assert unwraps(metrics) == 1.0
