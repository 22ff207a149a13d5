"""A Cloud KMS version whose creation is cancelled (the client's gRPC deadline) while the keystore makes its key:
the keystore's thread runs on and makes the key, so the next attempt must adopt it. The claim was released on
the cancellation, and every later attempt was refused (FAILED_PRECONDITION "remove that alias") for good,
automatic rotation included.

Real keystore and Cloud KMS store; the stall is a real one (another connection holds the keystore's write
lock), the cancellation is what gRPC does to a handler whose deadline passed."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from kubekms.keystore.sqlite import CHANGES_SUFFIX, DATABASE_FILE, ChangeCounter
from kubekms.providers import BackendConfig, open_backend
from kubekms.server import gcp_names
from kubekms.server import gcp_operations as ops
from kubekms.server.gcp_store import CryptoKeyRecord, GcpStore

DEADLINE = 30.0


async def _until(condition: str, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE
    while not check():
        assert time.monotonic() < deadline, condition
        await asyncio.sleep(0.01)  # polling interval of a condition with a deadline


def test_a_version_cancelled_while_its_key_is_made_is_adopted_by_the_next_attempt(tmp_path: Path) -> None:
    async def scenario() -> None:
        keystore_dir = tmp_path / "keystore"
        backend = await open_backend(BackendConfig(provider="local", state_dir=keystore_dir, init=True))
        store = GcpStore(tmp_path)
        counter = ChangeCounter(keystore_dir / (DATABASE_FILE + CHANGES_SUFFIX))
        blocker = sqlite3.connect(keystore_dir / DATABASE_FILE, isolation_level=None)
        try:
            now = datetime.now(UTC)
            store.create_key_ring("global", "r", now.timestamp())
            store.create_crypto_key(CryptoKeyRecord("global", "r", "k", now.timestamp(), 30), None)
            call = ops.GcpCall(backend=backend, store=store, lock=asyncio.Lock(), now=now)
            name = gcp_names.CryptoKeyName("proj", "global", "r", "k")

            blocker.execute("BEGIN IMMEDIATE")  # the keystore's write waits for this lock
            attempt = asyncio.create_task(ops.add_version(call, name, make_primary=True))
            await _until("the keystore write never started", lambda: counter.value() % 2 == 1)
            attempt.cancel()  # the client's deadline passed
            await asyncio.gather(attempt, return_exceptions=True)
            assert attempt.cancelled()
            blocker.execute("ROLLBACK")  # the keystore's thread goes on and makes the key
            await _until("the keystore write never finished", lambda: counter.value() % 2 == 0)
            made = await backend.describe_key(name.version(1).keystore_alias)

            again = await ops.add_version(call, name, make_primary=True)
            assert (again.version, again.keystore_key_id) == (1, made.key_id)
            assert store.crypto_key("global", "r", "k").primary_version == 1
        finally:
            blocker.close()
            counter.close()
            store.close()
            await backend.close()

    asyncio.run(scenario())
