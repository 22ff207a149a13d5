"""System calls for randomness on the data-key path: one read of the kernel's random source serves many requests."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from kubekms.keystore import Keystore


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the reads of the kernel's random source (os.urandom still answers: a spy, not a fake)."""
    calls: list[int] = []
    real: Callable[[int], bytes] = os.urandom

    def urandom(size: int) -> bytes:
        calls.append(size)
        return real(size)

    monkeypatch.setattr(os, "urandom", urandom)
    return calls


@pytest.mark.xfail(
    strict=True,
    reason="routed to lead: Keystore.create_data_key reads os.urandom(length) per call (one getrandom system call "
    "per GenerateDataKey, the only one left on that path); draw data keys from a fork-safe pool as "
    "kubekms.ciphertext draws nonces",
)
def test_a_hundred_data_keys_take_a_few_reads_of_the_random_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keystore = Keystore(tmp_path / "ks", init=True)
    key_id = keystore.create_key("bench").key_id
    calls = _counting(monkeypatch)
    keys = {keystore.create_data_key(key_id).plaintext for _ in range(100)}
    assert len(keys) == 100  # never the same data key twice
    assert len(calls) <= 5, f"{len(calls)} reads of the random source for 100 data keys"
