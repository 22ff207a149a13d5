"""Nonces and request ids now come from pools filled 256 at a time (073c4eb, 284ed9d, 73c3964): no two seals may
share a nonce under one key, whether they run on threads of one process or in a process and its forked child
(the server's workers fork; the keystore seals on threads). Real seals with a real AES-GCM key, a real fork."""

from __future__ import annotations

import os
import threading

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kubekms import ciphertext
from kubekms.server.pipeline import REQUEST_IDS

SEALS = 600  # more than two pools' worth


def _nonces(cipher: AESGCM, count: int) -> list[bytes]:
    return [ciphertext.parse(ciphertext.seal(cipher, "k", 1, b"x", b"")).nonce for _ in range(count)]


def _in_child(work: str) -> list[str]:
    """What a forked child draws (``nonces`` or ``ids``), read back through a pipe as hex lines."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: draw, write, leave without running the parent's cleanup
        try:
            cipher = AESGCM(bytes(32))
            drawn = [n.hex() for n in _nonces(cipher, SEALS)] if work == "nonces" else [
                REQUEST_IDS.hex() for _ in range(SEALS)]  # fmt: skip
            os.write(write_end, "\n".join(drawn).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 65536):
        chunks.append(chunk)
    os.close(read_end)
    assert os.waitpid(pid, 0)[1] == 0
    return b"".join(chunks).decode().split("\n")


def test_a_forked_child_never_seals_with_a_nonce_its_parent_holds() -> None:
    cipher = AESGCM(bytes(32))
    _nonces(cipher, 1)  # the parent's pool is full now
    child = set(_in_child("nonces"))
    parent = {n.hex() for n in _nonces(cipher, SEALS)}
    assert len(child) == SEALS and len(parent) == SEALS and not child & parent


def test_a_forked_child_never_repeats_its_parents_request_ids() -> None:
    REQUEST_IDS.hex()
    child = set(_in_child("ids"))
    parent = {REQUEST_IDS.hex() for _ in range(SEALS)}
    assert len(child) == SEALS and len(parent) == SEALS and not child & parent


def test_threads_sealing_at_once_never_share_a_nonce() -> None:
    cipher, start = AESGCM(bytes(32)), threading.Barrier(8)
    drawn: list[list[bytes]] = [[] for _ in range(8)]

    def seal_many(index: int) -> None:
        start.wait(timeout=30)
        drawn[index] = _nonces(cipher, 3000)

    threads = [threading.Thread(target=seal_many, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    every = [nonce for batch in drawn for nonce in batch]
    assert len(every) == 8 * 3000 and len(set(every)) == len(every)
