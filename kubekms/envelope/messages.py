"""Encrypt and decrypt AWS Encryption SDK messages under a keyring, streaming, at constant memory.

Policy, fixed here:
- key commitment required both ways (``REQUIRE_ENCRYPT_REQUIRE_DECRYPT``): suite
  ``AES_256_GCM_HKDF_SHA512_COMMIT_KEY`` by default, or ``..._ECDSA_P384`` with
  ``signed=True`` (then a holder of a decrypting key cannot forge messages, at about half the
  throughput: ECDSA over a SHA-384 of the whole message); decryption accepts both.
- frames of :data:`FRAME_BYTES` (or ``frame_bytes``); a stream is read and written one frame at a
  time, so memory does not grow with the message. Measured (bench/envelope_bench.py, profiles
  of 1 GiB in 1 MiB frames): what separates the SDK from raw AES-GCM is its copies of every frame,
  beside the source's read that both make: decrypting three (its reader's BytesIO, the frame's
  ``struct.unpack``, ``read()``'s BytesIO), encrypting four (its reader's BytesIO, the frame's
  ``struct.pack``, ``read()``'s slice and its BytesIO; a fifth, the concatenation onto a
  remainder, is avoided by :func:`_read_size`), then Python per frame. Frames of 1 MiB beat
  256 KiB (less Python per byte), 2-4 MiB are within a few percent of 1 MiB, 8 MiB is ~35%
  slower; all of it only where glibc's allocator keeps frame buffers on the heap
  (:mod:`kubekms.envelope.allocator`, a process-wide setting the CLI makes, with
  :data:`~kubekms.envelope.allocator.LARGE_FRAME_BYTES`); without it, frames of 1 MiB and more
  make encryption page-fault its buffers in anew, ~3x slower. A message holds at most
  :data:`MAX_ENCRYPTED_DATA_KEYS` keys.
- the encryption context travels in the header (authenticated), is bound to every wrapped data
  key, and ``required_context`` on decryption must be a subset of it, checked before the first
  byte of plaintext is released.
- an optional data-key cache (the SDK's caching CMM) bounded by age, messages and bytes;
  encryption reuses a cached data key only when the plaintext's length is known up front.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO

import aws_encryption_sdk
from aws_encryption_sdk import CommitmentPolicy
from aws_encryption_sdk.caches.local import LocalCryptoMaterialsCache
from aws_encryption_sdk.exceptions import AWSEncryptionSDKClientError, DecryptKeyError
from aws_encryption_sdk.identifiers import Algorithm
from aws_encryption_sdk.materials_managers.base import CryptoMaterialsManager
from aws_encryption_sdk.materials_managers.caching import CachingCryptoMaterialsManager
from cryptography.exceptions import InvalidSignature, InvalidTag

from kubekms.envelope.errors import (
    ContextMismatch,
    EnvelopeError,
    InvalidMessage,
    InvalidRequest,
    NoKeyCanDecrypt,
)
from kubekms.envelope.keyring import Keyring
from kubekms.envelope.keys import recording_failures

FRAME_BYTES = 256 * 1024
MAX_FRAME_BYTES = 16 * 1024 * 1024  # also the largest frame (or unframed body) decrypted: the SDK holds one whole
FRAME_MULTIPLE = 128  # the SDK's rule (it takes AES's block size in bits for bytes)
MAX_ENCRYPTED_DATA_KEYS = 16
RESERVED_CONTEXT_PREFIX = "aws-crypto-"
UNSIGNED = Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY
SIGNED = Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384

Progress = Callable[[], None]  # called after each chunk written (e.g. to poll the source's position)


@dataclass(frozen=True)
class CachePolicy:
    """Bounds of the data-key cache: a cached data key is used for at most ``max_messages``
    messages and ``max_bytes`` bytes of plaintext, and for at most ``max_age`` seconds;
    ``capacity`` entries (one per encryption context and key set) are kept."""

    max_age: float = 300.0
    max_messages: int = 1000
    max_bytes: int = 1 << 30
    capacity: int = 100


def check_context(context: Mapping[str, str]) -> dict[str, str]:
    for key, value in context.items():
        if not isinstance(key, str) or not isinstance(value, str) or not key:
            raise InvalidRequest("encryption context keys and values must be text, keys non-empty")
        if key.startswith(RESERVED_CONTEXT_PREFIX):
            raise InvalidRequest(f"encryption context key {key!r}: the prefix {RESERVED_CONTEXT_PREFIX} is reserved")
    return dict(context)


def _missing(required: Mapping[str, str], actual: Mapping[str, str]) -> list[str]:
    return [
        f"{key}={value!r} (message has {actual[key]!r})" if key in actual else f"{key}={value!r} (absent)"
        for key, value in sorted(required.items())
        if actual.get(key) != value
    ]


@contextlib.contextmanager
def _sdk_errors(decrypting: bool) -> Iterator[None]:
    """The SDK's and cryptography's exceptions -> our few classes, with the collected reasons."""
    with recording_failures() as failures:
        try:
            yield
        except EnvelopeError:
            raise
        except DecryptKeyError:
            reasons = "; ".join(failures) or "no encrypted data key of the message names a configured backend"
            raise NoKeyCanDecrypt(f"no key can decrypt this message: {reasons}") from None
        except (InvalidTag, InvalidSignature):
            raise InvalidMessage("message authentication failed: the message was tampered with or corrupted") from None
        except (AWSEncryptionSDKClientError, ValueError, EOFError) as error:
            if not decrypting:
                raise InvalidRequest(f"cannot encrypt: {_reason(error)}") from None
            raise InvalidMessage(
                f"not a valid message (truncated, tampered with, or not in this format): {_reason(error)}"
            ) from None


def _reason(error: Exception) -> str:
    """The SDK's first argument is its message; struct errors are wrapped as a tuple of details."""
    first = error.args[0] if error.args else type(error).__name__
    return "the message ends early or is malformed" if "deserialization" in str(first) else str(first)


class Envelope:
    """Messages under one open :class:`Keyring`, optionally with a data-key cache."""

    def __init__(
        self,
        keyring: Keyring,
        *,
        cache: CachePolicy | None = None,
        signed: bool = False,
        frame_bytes: int = FRAME_BYTES,
    ) -> None:
        if not 0 < frame_bytes <= MAX_FRAME_BYTES or frame_bytes % FRAME_MULTIPLE:
            raise InvalidRequest(
                f"frame size {frame_bytes}: a multiple of {FRAME_MULTIPLE} bytes up to {MAX_FRAME_BYTES}"
            )
        self._frame_bytes = frame_bytes
        self._client = aws_encryption_sdk.EncryptionSDKClient(
            commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT,
            max_encrypted_data_keys=MAX_ENCRYPTED_DATA_KEYS,
        )
        self._algorithm = SIGNED if signed else UNSIGNED
        manager: CryptoMaterialsManager = keyring.materials_manager
        if cache is not None:
            manager = CachingCryptoMaterialsManager(
                cache=LocalCryptoMaterialsCache(capacity=cache.capacity),
                backing_materials_manager=manager,
                max_age=float(cache.max_age),
                max_messages_encrypted=cache.max_messages,
                max_bytes_encrypted=cache.max_bytes,
            )
        self._manager = manager

    def encrypt_stream(
        self,
        source: BinaryIO,
        sink: BinaryIO,
        context: Mapping[str, str],
        *,
        source_length: int | None = None,
        progress: Progress | None = None,
    ) -> None:
        """Read plaintext from ``source`` to its end, write the message to ``sink``."""
        options: dict[str, Any] = {} if source_length is None else {"source_length": source_length}
        with _sdk_errors(decrypting=False):
            stream = self._client.stream(
                mode="e",
                source=source,
                materials_manager=self._manager,
                encryption_context=check_context(context),
                algorithm=self._algorithm,
                frame_length=self._frame_bytes,
                **options,
            )
            _pump(stream, sink, self._frame_bytes, progress)
            stream.close()

    def decrypt_stream(
        self,
        source: BinaryIO,
        sink: BinaryIO,
        *,
        required_context: Mapping[str, str] | None = None,
        progress: Progress | None = None,
        whole_source: bool = True,
    ) -> dict[str, str]:
        """Write the plaintext of the message in ``source`` to ``sink``; return its encryption context.

        Plaintext is written frame by frame as each frame authenticates; an error (tampering,
        truncation) raises after part of it was written, so write to a place you can discard.
        ``whole_source``: the source holds this one message, and bytes after it are refused
        (InvalidMessage); False leaves the source just after the message (a stream of several).
        """
        required = check_context(required_context or {})
        with _sdk_errors(decrypting=True):
            stream = self._client.stream(
                mode="d", source=source, materials_manager=self._manager, max_body_length=MAX_FRAME_BYTES
            )
            actual = dict(stream.header.encryption_context)
            missing = _missing(required, actual)
            if missing:
                raise ContextMismatch(f"encryption context does not match: {', '.join(missing)}")
            _pump(stream, sink, stream.header.frame_length or FRAME_BYTES, progress)
            stream.close()  # checks that the message ended where it says (and its signature, if signed)
            if whole_source and source.read(1):  # the SDK reads exactly the message: more is another or appended
                raise InvalidMessage("data follows after the end of the message (two messages concatenated, or "
                                     "bytes appended); only one message per input is decrypted")  # fmt: skip
        return {key: value for key, value in actual.items() if not key.startswith(RESERVED_CONTEXT_PREFIX)}

    def encrypt(self, plaintext: bytes, context: Mapping[str, str]) -> bytes:
        sink = io.BytesIO()
        self.encrypt_stream(io.BytesIO(plaintext), sink, context, source_length=len(plaintext))
        return sink.getvalue()

    def decrypt(self, message: bytes, required_context: Mapping[str, str] | None = None) -> bytes:
        sink = io.BytesIO()
        self.decrypt_stream(io.BytesIO(message), sink, required_context=required_context)
        return sink.getvalue()


def _pump(stream: Any, sink: BinaryIO, chunk_bytes: int, progress: Progress | None) -> None:
    """Copy the SDK stream to ``sink``, asking for whole frames so that the SDK copies no more than it must."""
    while chunk := stream.read(_read_size(stream, chunk_bytes)):
        sink.write(chunk)
        if progress is not None:
            progress()


def _read_size(stream: Any, chunk_bytes: int) -> int:
    """What to ask the SDK's ``read()`` for: all it holds when it holds something, else one frame.

    ``read(n)`` makes whole frames into a bytes buffer (concatenated onto what it held), returns
    ``buffer[:n]`` and keeps ``buffer[n:]``. Decrypting, a frame's plaintext is ``frame_length``:
    reads of that size take the buffer whole. Encrypting, a frame is longer than the plaintext
    read for it (sequence number, IV, tag; the header before the first), so frame-sized reads
    always left a remainder, and each next frame was concatenated onto it: one more copy of every
    frame (~10% of encryption's CPU, bench/envelope_bench.py). Taking the remainder alone first
    leaves the buffer empty, and the concatenation copies nothing. The buffer is the SDK's
    attribute, only read: if it were absent or not bytes, frame-sized reads are as correct, slower.
    """
    held = getattr(stream, "output_buffer", None)
    return len(held) if isinstance(held, bytes) and held else chunk_bytes
