"""Envelope encryption's speed: ``python bench/envelope_bench.py [--large-mib 1024] [--frames-kib 64,1024]``.

Against a real ``kubekms server`` on loopback, in one run:
(a) throughput of ``kubekms.envelope`` for one 1 MiB and one large (default 1 GiB) message under a key of
    the server's AWS wire (provider ``aws``), encrypt and decrypt, next to (i) the plain AWS Encryption
    SDK on the same wire (StrictAwsKmsMasterKeyProvider, same suite and frame size; it decrypts the very
    message ours wrote, and its encrypt is timed on its own message) and (ii) raw AES-256-GCM
    (``cryptography``'s AESGCM over frame-sized chunks, no framing, no key management). The 1 MiB
    figures include the data-key round trip (no cache). All do the same I/O, in memory (a disk would
    measure the disk): plaintext from a generator stream; each message is sealed once, untimed, and kept
    as the chunks written; timed passes write to a counting sink (none pays for fresh memory); each
    read of these sources copies once, as a file read does. Two large messages are held in memory
    (ours and raw AES-GCM's: about 2 GiB).
    glibc's allocator is set, and the frame size chosen, as ``kubekms encrypt``/``decrypt`` do
    (``--default-malloc``: neither, the library's defaults). ``--frames-kib`` repeats the
    large-message rows for other frame sizes (how the frame sizes were chosen).
(b) backend data-key calls per N small messages with the data-key cache on (default bounds)
    and off, counted on the server's own metrics (provider ``kubekms``).
(c) peak RSS of ``kubekms encrypt`` and ``decrypt`` (each a process of its own) on a 1 MiB and on
    a large file (streaming: it does not grow with the size).

Target (issue 18): large-message throughput >= 0.7x raw AES-GCM. Machines here are shared and
noisy: by default MB/s are per CPU second of this process (``time.process_time``: what another
process takes from our core is not counted, and the 1 MiB rows count our side of the data-key call,
not the server's or the wait: ``--clock wall`` for that); the three pipelines take turns within each
of ``--repeat`` rounds and each figure is the best of its rounds; compare the ratios of one run.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aws_encryption_sdk
from aws_encryption_sdk import CommitmentPolicy, StrictAwsKmsMasterKeyProvider
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kubekms.devenv.kmsserver import KMSServer, kms_server

# the tests' helpers (server counters, the plain SDK's provider), as bench/fuzz.py shares tests/fuzz
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "envelope"))
from envelope_fixtures import MiB, aws_config, data_key_calls, plain_sdk_provider, streaming_peak_rss

from kubekms.envelope import FRAME_BYTES, CachePolicy, Envelope, KeyRef, Keyring
from kubekms.envelope.allocator import LARGE_FRAME_BYTES, keep_frame_buffers_on_heap
from kubekms.envelope.messages import UNSIGNED

BLOCK = os.urandom(4 * MiB)  # the plaintext pattern; a read returns at most up to its end
Speeds = tuple[float, float]  # MB/s encrypt, decrypt


class PatternSource(io.RawIOBase):
    """``size`` bytes of a repeated random block, produced on demand: one slice (one copy) per read."""

    def __init__(self, size: int) -> None:
        self._left = size
        self._offset = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        count = min(self._left, len(BLOCK) - self._offset, size if size >= 0 else len(BLOCK))
        piece = bytes(memoryview(BLOCK)[self._offset : self._offset + count])
        self._offset = (self._offset + count) % len(BLOCK)
        self._left -= count
        return piece


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
    """Reads back a :class:`ChunkSink`'s chunks, one copy per read (as a file read copies from the page cache)."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = iter(chunks)
        self._current = b""
        self._offset = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self._offset == len(self._current):
            self._current, self._offset = next(self._chunks, b""), 0
        end = len(self._current) if size < 0 else self._offset + size
        piece = bytes(memoryview(self._current)[self._offset : end])
        self._offset += len(piece)
        return piece


class CountingSink(io.RawIOBase):
    def __init__(self) -> None:
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.count += len(data)
        return len(data)


CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}
clock = CLOCKS["cpu"]


def timed(action: Callable[[], None]) -> float:
    started = clock()
    action()
    return clock() - started


Sealer = Callable[[io.RawIOBase, io.RawIOBase, int], None]  # plaintext source, sink, plaintext size
Opener = Callable[[io.RawIOBase, io.RawIOBase], None]  # message source, plaintext sink


@dataclass(frozen=True)
class Pipeline:
    encrypt: Sealer
    decrypt: Opener

    def seal(self, size: int) -> list[bytes]:
        """A message of ``size`` bytes of plaintext, as chunks in memory (untimed)."""
        sink = ChunkSink()
        self.encrypt(PatternSource(size), sink, size)
        return sink.chunks

    def speeds(self, size: int, message: list[bytes]) -> Speeds:
        """MB/s encrypting ``size`` bytes and decrypting ``message``, both to a counting sink: no timed pass
        writes to fresh memory (page faults would measure the kernel, and vary with the machine's load)."""
        encrypting = timed(lambda: self.encrypt(PatternSource(size), CountingSink(), size))
        plain = CountingSink()
        decrypting = timed(lambda: self.decrypt(ChunkSource(message), plain))
        assert plain.count == size
        return size / encrypting / 1e6, size / decrypting / 1e6


def raw_aes_gcm(frame: int) -> Pipeline:
    """AES-256-GCM alone in chunks of ``frame`` bytes, counter nonces: no framing, no key management."""
    cipher = AESGCM(AESGCM.generate_key(bit_length=256))

    def encrypt(source: io.RawIOBase, sink: io.RawIOBase, size: int) -> None:
        index = 0
        while chunk := source.read(frame):
            sink.write(cipher.encrypt(index.to_bytes(12, "big"), chunk, None))
            index += 1

    def decrypt(source: io.RawIOBase, sink: io.RawIOBase) -> None:
        index = 0
        while chunk := source.read(frame + 16):
            sink.write(cipher.decrypt(index.to_bytes(12, "big"), chunk, None))
            index += 1

    return Pipeline(encrypt, decrypt)


def ours(envelope: Envelope) -> Pipeline:
    def encrypt(source: io.RawIOBase, sink: io.RawIOBase, size: int) -> None:
        envelope.encrypt_stream(source, sink, {"bench": "envelope"}, source_length=size)  # type: ignore[arg-type]

    def decrypt(source: io.RawIOBase, sink: io.RawIOBase) -> None:
        envelope.decrypt_stream(source, sink)  # type: ignore[arg-type]

    return Pipeline(encrypt, decrypt)


def plain_sdk(provider: StrictAwsKmsMasterKeyProvider, frame: int) -> Pipeline:
    """The plain AWS Encryption SDK as an AWS application uses it, one frame per read()."""
    client = aws_encryption_sdk.EncryptionSDKClient(commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)

    def pump(sink: io.RawIOBase, **options: object) -> None:
        with client.stream(key_provider=provider, **options) as stream:
            while chunk := stream.read(frame):
                sink.write(chunk)

    def encrypt(source: io.RawIOBase, sink: io.RawIOBase, size: int) -> None:
        pump(sink, mode="e", source=source, source_length=size, frame_length=frame, algorithm=UNSIGNED,
             encryption_context={"bench": "plain-sdk"})  # fmt: skip

    def decrypt(source: io.RawIOBase, sink: io.RawIOBase) -> None:
        pump(sink, mode="d", source=source)

    return Pipeline(encrypt, decrypt)


def throughput(mine: Pipeline, sdk: Pipeline, raw: Pipeline, size: int, rounds: int) -> tuple[Speeds, ...]:
    """Best of ``rounds`` rounds, taking turns, of ours, the plain SDK (it decrypts our message) and raw AES-GCM."""
    message, raw_message = mine.seal(size), raw.seal(size)
    results = [
        (mine.speeds(size, message), sdk.speeds(size, message), raw.speeds(size, raw_message)) for _ in range(rounds)
    ]
    return tuple((max(r[i][0] for r in results), max(r[i][1] for r in results)) for i in range(3))


def print_rows(label: str, frame: int, figures: tuple[Speeds, ...]) -> None:
    for index, operation in enumerate(("encrypt", "decrypt")):
        mine, sdk, aes = (figure[index] for figure in figures)
        print(
            f"{label:>9} {frame // 1024:>6} {operation:>8} {mine:>9.0f} {sdk:>9.0f} {aes:>8.0f}"
            f" {mine / aes:>8.2f} {sdk / aes:>7.2f} {mine / sdk:>8.2f}"
        )


def calls_per_messages(server: KMSServer, envelope: Envelope, messages: int) -> int:
    before = data_key_calls(server)
    for index in range(messages):
        envelope.encrypt(b"small message %d" % index, {"bench": "small"})
    return data_key_calls(server) - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--large-mib", type=int, default=1024, help="size of the large message in MiB")
    parser.add_argument("--small", type=int, default=1000, help="number of small messages for (b)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of each measurement; the best is shown")
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="cpu",
        help="cpu: MB per CPU second of this process (default: robust on a shared machine); wall: MB per second",
    )
    parser.add_argument(
        "--default-malloc",
        action="store_true",
        help="leave glibc's thresholds alone (kubekms encrypt/decrypt fix them: kubekms.envelope.allocator)",
    )
    parser.add_argument(
        "--frames-kib", default="", help="other frame sizes (KiB, comma-separated) for the large message"
    )
    arguments = parser.parse_args()
    global clock
    clock = CLOCKS[arguments.clock]
    tuned = not arguments.default_malloc and keep_frame_buffers_on_heap()  # as the CLI does
    frame_bytes = LARGE_FRAME_BYTES if tuned else FRAME_BYTES  # and the CLI's frame size then
    large = arguments.large_mib * MiB
    other_frames = [int(kib) * 1024 for kib in arguments.frames_kib.split(",") if kib]

    with tempfile.TemporaryDirectory() as directory, kms_server(Path(directory) / "kms") as server:
        os.environ["AWS_ENDPOINT_URL_KMS"] = server.endpoint  # for the plain SDK's botocore
        aws_key = server.call("create_key", "bench-envelope-aws")
        provider = plain_sdk_provider(server, aws_key.key_id)
        with Keyring({"aws": aws_config(server)}, [KeyRef("aws", "bench-envelope-aws")]) as keyring:
            print("  message  frame       op  envelope     plain  AES-GCM envelope     SDK envelope")
            print("             KiB               MB/s  SDK MB/s     MB/s     /AES    /AES     /SDK")
            rows = [("1 MiB", MiB, frame_bytes), (f"{arguments.large_mib} MiB", large, frame_bytes)]
            rows += [(f"{arguments.large_mib} MiB", large, frame) for frame in other_frames]
            for label, size, frame in rows:
                pipelines = ours(Envelope(keyring, frame_bytes=frame)), plain_sdk(provider, frame), raw_aes_gcm(frame)
                figures = throughput(*pipelines, size, arguments.repeat)
                print_rows(label, frame, figures)
        calls_with_and_without_cache(server, arguments.small)
        baseline, encrypting, decrypting = streaming_peak_rss(Path(directory), large)
        print(
            "peak RSS of kubekms encrypt / decrypt (processes of their own, provider local): "
            f"1 MiB file {baseline / MiB:.0f} MiB; {arguments.large_mib} MiB file "
            f"{encrypting / MiB:.0f} / {decrypting / MiB:.0f} MiB"
        )
    sys.stdout.flush()


def calls_with_and_without_cache(server: KMSServer, messages: int) -> None:
    server.call("create_key", "bench-envelope")
    with Keyring({"kms": server.backend_config()}, [KeyRef("kms", "bench-envelope")]) as keyring:
        with_cache = calls_per_messages(server, Envelope(keyring, cache=CachePolicy()), messages)
        without_cache = calls_per_messages(server, Envelope(keyring), messages)
    print(
        f"backend data-key calls per {messages} small messages: "
        f"{with_cache} with the cache ({CachePolicy()}), {without_cache} without"
    )


if __name__ == "__main__":
    main()
