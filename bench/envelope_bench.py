"""Envelope encryption's speed: ``python bench/envelope_bench.py [--large-mib 1024] [--small 1000]``.

Against a real ``kubekms server`` on loopback (provider ``kubekms``), in one run:
(a) throughput of ``kubekms.envelope`` for one 1 MiB and one large (default 1 GiB) message,
    encrypt and decrypt, next to raw AES-256-GCM (``cryptography``'s AESGCM over frame-sized chunks,
    no framing, no key management), and the ratio; the 1 MiB figure includes the data-key
    round trip to the server (no cache). Both sides do the same I/O, in memory (a disk would measure
    the disk): plaintext from a generator stream, ciphertext kept as the chunks written and read back,
    plaintext to a counting sink. The large message's ciphertext is held in memory (about 1 GiB).
(b) backend data-key calls per N small messages with the data-key cache on (default bounds)
    and off, counted on the server's own metrics.
(c) peak RSS of ``kubekms encrypt`` and ``decrypt`` (each a process of its own) on a 1 MiB and on
    a large file (streaming: it does not grow with the size).

Target (issue 18): large-message throughput >= 0.7x raw AES-GCM. Machines here are shared and
noisy: each figure is the best of ``--repeat`` runs; compare the ratios of one run, not
absolute figures across runs.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kubekms.devenv.kmsserver import KMSServer, kms_server

# the tests' reading of the server's own request counters, as bench/fuzz.py shares tests/fuzz
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "envelope"))
from envelope_fixtures import MiB, data_key_calls, streaming_peak_rss

from kubekms.envelope import FRAME_BYTES, CachePolicy, Envelope, KeyRef, Keyring

BLOCK = os.urandom(MiB)


class PatternSource(io.RawIOBase):
    """``size`` bytes of a repeated random MiB, produced on demand."""

    def __init__(self, size: int) -> None:
        self._left = size
        self._offset = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        count = min(len(buffer), self._left, MiB - self._offset)
        buffer[:count] = BLOCK[self._offset : self._offset + count]
        self._offset = (self._offset + count) % MiB
        self._left -= count
        return count


class ChunkSink(io.RawIOBase):
    """Keeps what is written, as the chunks written (no copy into one growing buffer)."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.chunks.append(bytes(data))
        return len(data)


class ChunkSource(io.RawIOBase):
    """Reads back a :class:`ChunkSink`'s chunks."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = iter(chunks)
        self._current = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._current:
            following = next(self._chunks, None)
            if following is None:
                return 0
            self._current = memoryview(following)
        count = min(len(buffer), len(self._current))
        buffer[:count] = self._current[:count]
        self._current = self._current[count:]
        return count


class CountingSink(io.RawIOBase):
    def __init__(self) -> None:
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.count += len(data)
        return len(data)


def raw_aes_gcm(size: int) -> tuple[float, float]:
    """MB/s of AES-256-GCM alone over ``size`` bytes in chunks of the envelope's frame size, through the
    same source and sinks (chunks of that size also keep allocations off mmap, as the SDK's do)."""
    cipher = AESGCM(AESGCM.generate_key(bit_length=256))
    source, sealed, chunks = PatternSource(size), ChunkSink(), size // FRAME_BYTES
    started = time.perf_counter()
    for index in range(chunks):
        sealed.write(cipher.encrypt(index.to_bytes(12, "big"), source.read(FRAME_BYTES), None))
    encrypt_seconds = time.perf_counter() - started
    reader, plain = ChunkSource(sealed.chunks), CountingSink()
    started = time.perf_counter()
    for index in range(chunks):
        plain.write(cipher.decrypt(index.to_bytes(12, "big"), reader.read(FRAME_BYTES + 16), None))
    decrypt_seconds = time.perf_counter() - started
    assert plain.count == size
    return size / encrypt_seconds / 1e6, size / decrypt_seconds / 1e6


def envelope_speed(envelope: Envelope, size: int) -> tuple[float, float]:
    """MB/s of one message of ``size`` bytes, encrypted into memory then decrypted from there."""
    sealed = ChunkSink()
    started = time.perf_counter()
    envelope.encrypt_stream(PatternSource(size), sealed, {"bench": "envelope"}, source_length=size)  # type: ignore[arg-type]
    encrypt_seconds = time.perf_counter() - started
    plain = CountingSink()
    started = time.perf_counter()
    envelope.decrypt_stream(ChunkSource(sealed.chunks), plain)  # type: ignore[arg-type]
    decrypt_seconds = time.perf_counter() - started
    assert plain.count == size
    return size / encrypt_seconds / 1e6, size / decrypt_seconds / 1e6


def best_of(runs: int, measure: Callable[[], tuple[float, float]]) -> tuple[float, float]:
    """The best encrypt and the best decrypt figure of ``runs`` runs (a shared machine only slows runs down)."""
    results = [measure() for _ in range(runs)]
    return max(result[0] for result in results), max(result[1] for result in results)


def calls_per_messages(server: KMSServer, envelope: Envelope, messages: int) -> int:
    before = data_key_calls(server)
    for index in range(messages):
        envelope.encrypt(b"small message %d" % index, {"bench": "small"})
    return data_key_calls(server) - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--large-mib", type=int, default=1024, help="size of the large message in MiB")
    parser.add_argument("--small", type=int, default=1000, help="number of small messages for (b)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement; the best is shown")
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory() as directory, kms_server(Path(directory) / "kms") as server:
        server.call("create_key", "bench-envelope")
        with Keyring({"kms": server.backend_config()}, [KeyRef("kms", "bench-envelope")]) as keyring:
            envelope = Envelope(keyring)
            print(f"{'message':>10} {'op':>8} {'envelope MB/s':>14} {'AES-GCM MB/s':>13} {'ratio':>6}")
            for label, size in (("1 MiB", MiB), (f"{arguments.large_mib} MiB", arguments.large_mib * MiB)):
                ours = best_of(arguments.repeat, lambda: envelope_speed(envelope, size))  # noqa: B023
                raw = best_of(arguments.repeat, lambda: raw_aes_gcm(size))  # noqa: B023
                for operation, mine, theirs in zip(("encrypt", "decrypt"), ours, raw, strict=True):
                    print(f"{label:>10} {operation:>8} {mine:>14.0f} {theirs:>13.0f} {mine / theirs:>6.2f}")

            cached = Envelope(keyring, cache=CachePolicy())
            with_cache = calls_per_messages(server, cached, arguments.small)
            without_cache = calls_per_messages(server, envelope, arguments.small)
            print(
                f"backend data-key calls per {arguments.small} small messages: "
                f"{with_cache} with the cache ({CachePolicy()}), {without_cache} without"
            )
        baseline, encrypting, decrypting = streaming_peak_rss(Path(directory), arguments.large_mib * MiB)
        print(
            "peak RSS of kubekms encrypt / decrypt (processes of their own, provider local): "
            f"1 MiB file {baseline / MiB:.0f} MiB; {arguments.large_mib} MiB file "
            f"{encrypting / MiB:.0f} / {decrypting / MiB:.0f} MiB"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
