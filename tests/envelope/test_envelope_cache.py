"""The data-key cache: backend calls counted on the server's own metrics, each bound enforced."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from envelope_fixtures import data_key_calls, new_key

from kubekms.devenv.kmsserver import KMSServer
from kubekms.envelope import CachePolicy, Envelope, KeyRef, Keyring
from kubekms.providers import BackendConfig

MAX_AGE = 2.0  # seconds a cached data key serves in test_max_age_bounds_reuse


@pytest.fixture
def keyring(configs: dict[str, BackendConfig]) -> Iterator[Keyring]:
    alias, _ = new_key(configs["kubekms"])
    with Keyring({"b": configs["kubekms"]}, [KeyRef("b", alias)]) as opened:
        yield opened


def calls_for(server: KMSServer, action: object) -> int:
    before = data_key_calls(server)
    action()  # type: ignore[operator]
    return data_key_calls(server) - before


def test_without_cache_one_call_per_message(envelope_server: KMSServer, keyring: Keyring) -> None:
    envelope = Envelope(keyring)
    assert calls_for(envelope_server, lambda: [envelope.encrypt(b"m", {"a": "1"}) for _ in range(5)]) == 5


def test_max_messages_bounds_reuse(envelope_server: KMSServer, keyring: Keyring) -> None:
    envelope = Envelope(keyring, cache=CachePolicy(max_messages=10))
    messages: list[bytes] = []
    assert (
        calls_for(envelope_server, lambda: messages.extend(envelope.encrypt(b"m", {"a": "1"}) for _ in range(25))) == 3
    )
    # each context is its own entry
    assert calls_for(envelope_server, lambda: envelope.encrypt(b"m", {"a": "2"})) == 1
    # decryption materials are cached too: 25 messages under 3 data keys
    assert calls_for(envelope_server, lambda: [envelope.decrypt(message) for message in messages]) == 3


def test_max_bytes_bounds_reuse(envelope_server: KMSServer, keyring: Keyring) -> None:
    envelope = Envelope(keyring, cache=CachePolicy(max_bytes=10_000))
    # 4,000 bytes each: a data key serves two messages (8,000), not a third (12,000 > 10,000)
    assert calls_for(envelope_server, lambda: [envelope.encrypt(b"x" * 4000, {}) for _ in range(6)]) == 3


def test_max_age_bounds_reuse(envelope_server: KMSServer, keyring: Keyring) -> None:
    # the five encrypts must share one data key: all within MAX_AGE of the first, which 0.3 s did not leave
    # a loaded 2-core machine room for
    envelope = Envelope(keyring, cache=CachePolicy(max_age=MAX_AGE))
    assert calls_for(envelope_server, lambda: [envelope.encrypt(b"m", {}) for _ in range(5)]) == 1
    deadline = time.monotonic() + MAX_AGE + 0.05
    while time.monotonic() < deadline:  # the bound under test is a duration: let it pass
        time.sleep(0.05)
    assert calls_for(envelope_server, lambda: envelope.encrypt(b"m", {})) == 1
