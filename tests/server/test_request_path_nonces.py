"""Data-key ciphertexts' nonces: one read of the kernel's random source per seal (no pool a VM snapshot could
duplicate), never repeated in a process, its threads or a forked child."""

from __future__ import annotations

import os
import threading

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kubekms import ciphertext

CIPHER = AESGCM(os.urandom(32))


def _nonce_of(blob: bytes) -> bytes:
    return ciphertext.parse(blob).nonce


def test_each_seal_reads_its_nonce_from_the_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    """A spy on os.urandom (it still returns the kernel's bytes): a pool of nonces held in the process would be
    sealed with twice by the two copies of a cloned VM or a restored checkpoint."""
    reads: list[int] = []
    kernel = os.urandom

    def spy(size: int) -> bytes:
        reads.append(size)
        return kernel(size)

    monkeypatch.setattr(ciphertext.os, "urandom", spy)
    for _ in range(5):
        ciphertext.seal(CIPHER, "key-1", 1, b"x" * 32, b"")
    monkeypatch.undo()
    assert reads == [ciphertext.NONCE_SIZE] * 5


def test_nonces_never_repeat_and_every_sealed_key_opens() -> None:
    count = 1000
    blobs = [ciphertext.seal(CIPHER, "key-1", 1, bytes([i % 256]) * 32, b"aad") for i in range(count)]
    assert len({_nonce_of(blob) for blob in blobs}) == count
    for i, blob in enumerate(blobs):
        assert ciphertext.open_sealed(CIPHER, ciphertext.parse(blob), b"aad") == bytes([i % 256]) * 32


def test_threads_sealing_at_once_never_share_a_nonce() -> None:
    results: list[list[bytes]] = [[] for _ in range(4)]
    start = threading.Barrier(4)

    def seal_many(out: list[bytes]) -> None:
        start.wait()
        out.extend(_nonce_of(ciphertext.seal(CIPHER, "k", 1, b"x" * 32, b"")) for _ in range(2000))

    threads = [threading.Thread(target=seal_many, args=(out,)) for out in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [nonce for out in results for nonce in out]
    assert len(every) == 8000 and len(set(every)) == 8000


def test_a_forked_child_never_uses_its_parents_unused_nonces() -> None:
    ciphertext.seal(CIPHER, "k", 1, b"x" * 32, b"")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        child = b"".join(_nonce_of(ciphertext.seal(CIPHER, "k", 1, b"x" * 32, b"")) for _ in range(8))
        os.write(write_end, child)
        os._exit(0)
    os.close(write_end)
    child_nonces = b""
    while len(child_nonces) < 8 * ciphertext.NONCE_SIZE:
        chunk = os.read(read_end, 4096)
        assert chunk, "the child wrote its nonces"
        child_nonces += chunk
    os.close(read_end)
    os.waitpid(pid, 0)
    parent = {_nonce_of(ciphertext.seal(CIPHER, "k", 1, b"x" * 32, b"")) for _ in range(256)}
    size = ciphertext.NONCE_SIZE
    from_child = {child_nonces[i : i + size] for i in range(0, len(child_nonces), size)}
    assert not parent & from_child


def test_a_parsed_envelope_keeps_the_header_it_was_sealed_with() -> None:
    """Decrypt authenticates the header as parsed: the same bytes as the header built from its fields."""
    for key_id in ("0f8fad5b-d9cb-469f-a165-70867728950e", "é-key", "k" * 255):
        blob = ciphertext.seal(CIPHER, key_id, 7, b"x" * 32, b"aad")
        envelope = ciphertext.parse(blob)
        built = ciphertext.Envelope(envelope.key_id, envelope.key_version, envelope.nonce, envelope.sealed)
        assert envelope.header() == built.header() == blob[: len(blob) - len(envelope.sealed)]
        assert envelope.encode() == built.encode() == blob
        assert ciphertext.open_sealed(CIPHER, envelope, b"aad") == b"x" * 32
