"""The plugin's key hierarchy: backend key → local KEK (in memory) → the apiserver's DEK seed.

Encrypt seals the seed under the current KEK (AES-256-GCM, fresh nonce, the key_id as
associated data) and hands back the backend-wrapped KEK as an annotation. Decrypt
finds the KEK in a bounded cache keyed by that wrapped form, and only on a miss asks
the backend to unwrap it. A poller keeps the backend key's version current; a new
version means a new KEK and a new key_id (``<backend key id>:v<version>``), so the
key_id changes on every rotation and never returns to an earlier value.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import grpc
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kubekms.backend import Backend, KeyState
from kubekms.errors import InvalidArgument, InvalidCiphertext, KMSError
from kubekms_plugin.config import KekPolicy
from kubekms_plugin.metrics import PluginMetrics

logger = logging.getLogger(__name__)

KEK_ANNOTATION = "kek.kubekms.io"
KEK_AAD = b"kubekms.io/plugin-kek/v1"  # binds wrapped KEKs to this use of the backend key
SEALED_FORMAT = 1
NONCE_SIZE = 12
MAX_PLAINTEXT = 512
MAX_CIPHERTEXT = 1024
MAX_KEY_ID = 1024
MAX_ANNOTATIONS = 32 * 1024
_KEY_ID = re.compile(r"(?P<key>.+):v(?P<version>[1-9][0-9]{0,9})")  # fullmatch: "$" would allow a newline


class PluginError(Exception):
    """Answered to kube-apiserver as a gRPC status with this code and message."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def plugin_key_id(key_id: str, version: int) -> str:
    return f"{key_id}:v{version}"


@dataclass
class Kek:
    cipher: AESGCM
    wrapped: bytes
    version: int
    created_at: float
    uses: int = 0


class Keyring:
    def __init__(
        self,
        backend: Backend,
        key_ref: str,
        policy: KekPolicy,
        metrics: PluginMetrics,
        *,
        backend_name: str,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._backend = backend
        self._key_ref = key_ref
        self._policy = policy
        self._metrics = metrics
        self._backend_name = backend_name
        self._clock = clock
        self._cache: OrderedDict[bytes, AESGCM] = OrderedDict()
        self._new_kek_lock = asyncio.Lock()
        self.key_id: str | None = None  # the backend key's id (the configured ref may be an alias)
        self.latest_version = 0
        self.key_state: KeyState | None = None
        self.current: Kek | None = None
        # The KEK of the version kube-apiserver last heard of through Status: Encrypt keeps using it
        # until Status announced the new key_id (the apiserver drops an Encrypt whose key_id differs
        # from the last Status answer and marks the plugin unhealthy).
        self._announced: Kek | None = None
        self.backend_error: str | None = None

    # --- health, answered from memory -----------------------------------------------------

    def _kek_fresh(self, kek: Kek | None) -> bool:
        return (
            kek is not None
            and kek.uses < self._policy.max_encryptions
            and self._clock() - kek.created_at < self._policy.max_age
        )

    def _kek_usable(self, kek: Kek | None) -> bool:
        return kek is not None and self._kek_fresh(kek) and kek.version >= self.latest_version

    def health(self) -> str:
        """``ok`` exactly when an Encrypt would succeed now; otherwise a short reason."""
        if self.key_state is not None and self.key_state is not KeyState.ENABLED:
            return f"backend key {self.key_id} is {self.key_state.name.lower().replace('_', ' ')}"
        if self._kek_usable(self.current):
            return "ok"
        if self.backend_error is not None:
            return f"no usable KEK: {self.backend_error}"
        return "no KEK yet: waiting for the first backend poll"

    def announce(self) -> str:
        """The key_id for a Status answer; from now on Encrypt may use the current KEK."""
        self._announced = self.current
        return self.reported_key_id()

    def _kek_for_encrypt(self) -> Kek | None:
        announced, current = self._announced, self.current
        if (
            announced is not None
            and current is not None
            and announced.version != current.version
            and self._kek_fresh(announced)
        ):
            return announced  # a rotation the apiserver has not heard of yet
        return current if self._kek_usable(current) else None

    def reported_key_id(self) -> str:
        if self.current is None or self.key_id is None:
            return "kubekms-uninitialised"  # never issued by Encrypt; Decrypt refuses it
        return plugin_key_id(self.key_id, self.current.version)

    # --- backend -------------------------------------------------------------------------

    def _backend_failure(self, operation: str, error: KMSError) -> PluginError:
        self._metrics.backend_calls.labels(operation, "error").inc()
        if error.retryable:
            failure = PluginError(
                grpc.StatusCode.UNAVAILABLE, f"backend {self._backend_name} unavailable ({operation}): {error.message}"
            )
        else:
            failure = PluginError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"backend {self._backend_name} refused {operation}: {error.message}",
            )
        self.backend_error = failure.message
        return failure

    async def refresh(self) -> None:
        """One poll: learn the key's id, state and current version; make a new KEK when needed."""
        try:
            metadata = await self._backend.describe_key(self._key_ref)
        except KMSError as error:
            raise self._backend_failure("describe-key", error) from None
        self._metrics.backend_calls.labels("describe-key", "ok").inc()
        self.backend_error = None
        self.key_id, self.key_state = metadata.key_id, metadata.state
        self.latest_version = max(self.latest_version, metadata.current_version)
        if metadata.state is KeyState.ENABLED and not self._kek_usable(self.current):
            await self._new_kek()

    async def _new_kek(self) -> Kek:
        async with self._new_kek_lock:
            if self._kek_usable(self.current):
                assert self.current is not None
                return self.current
            key_ref = self.key_id or self._key_ref
            try:
                data_key = await self._backend.create_data_key(key_ref, length=32, aad=KEK_AAD)
            except KMSError as error:
                raise self._backend_failure("create-datakey", error) from None
            self._metrics.backend_calls.labels("create-datakey", "ok").inc()
            self._metrics.keks_created.inc()
            assert data_key.plaintext is not None
            cipher = AESGCM(data_key.plaintext)
            self.key_id = data_key.key_id
            self.latest_version = max(self.latest_version, data_key.key_version)
            kek = Kek(
                cipher=cipher, wrapped=data_key.ciphertext, version=data_key.key_version, created_at=self._clock()
            )
            self._remember(kek.wrapped, cipher)
            previous = self.current
            self.current = kek
            key_id = self.reported_key_id()
            self._metrics.set_current_key(key_id)
            if previous is None or previous.version != kek.version:
                logger.info("new key_id", extra={"fields": {"key_id": key_id}})
            return kek

    def _remember(self, wrapped: bytes, cipher: AESGCM) -> None:
        self._cache[wrapped] = cipher
        self._cache.move_to_end(wrapped)
        while len(self._cache) > self._policy.cache_size:
            self._cache.popitem(last=False)

    # --- the two crypto calls ------------------------------------------------------------

    async def encrypt(self, plaintext: bytes) -> tuple[bytes, str, dict[str, bytes]]:
        if not plaintext or len(plaintext) > MAX_PLAINTEXT:
            raise PluginError(grpc.StatusCode.INVALID_ARGUMENT, f"plaintext must be 1 to {MAX_PLAINTEXT} bytes")
        if self.key_state is not None and self.key_state is not KeyState.ENABLED:
            raise PluginError(grpc.StatusCode.FAILED_PRECONDITION, self.health())
        kek = self._kek_for_encrypt() or await self._new_kek()
        kek.uses += 1
        key_id = plugin_key_id(self.key_id or "", kek.version)
        nonce = os.urandom(NONCE_SIZE)
        sealed = bytes([SEALED_FORMAT]) + nonce + kek.cipher.encrypt(nonce, plaintext, key_id.encode())
        return sealed, key_id, {KEK_ANNOTATION: kek.wrapped}

    async def decrypt(self, ciphertext: bytes, key_id: str, annotations: Mapping[str, bytes]) -> bytes:
        self._check_decrypt_request(ciphertext, key_id, annotations)
        wrapped = annotations[KEK_ANNOTATION]
        cipher = self._cache.get(wrapped)
        if cipher is not None:
            self._metrics.kek_cache.labels("hit").inc()
            self._cache.move_to_end(wrapped)
        else:
            self._metrics.kek_cache.labels("miss").inc()
            cipher = await self._unwrap(wrapped)
        try:
            return cipher.decrypt(ciphertext[1 : 1 + NONCE_SIZE], ciphertext[1 + NONCE_SIZE :], key_id.encode())
        except InvalidTag:
            raise PluginError(
                grpc.StatusCode.INVALID_ARGUMENT,
                "ciphertext failed authentication: tampered, or not made with this key_id and KEK",
            ) from None

    def _check_decrypt_request(self, ciphertext: bytes, key_id: str, annotations: Mapping[str, bytes]) -> None:
        invalid = grpc.StatusCode.INVALID_ARGUMENT
        if not ciphertext or len(ciphertext) > MAX_CIPHERTEXT:
            raise PluginError(invalid, f"ciphertext must be 1 to {MAX_CIPHERTEXT} bytes")
        if ciphertext[0] != SEALED_FORMAT or len(ciphertext) < 1 + NONCE_SIZE + 16:
            raise PluginError(invalid, "ciphertext is not a kubekms plugin ciphertext (format or length)")
        if not key_id or len(key_id.encode()) > MAX_KEY_ID:
            raise PluginError(invalid, f"key_id must be 1 to {MAX_KEY_ID} bytes")
        if sum(len(k.encode()) + len(v) for k, v in annotations.items()) > MAX_ANNOTATIONS:
            raise PluginError(invalid, "annotations exceed 32 KiB")
        unknown = sorted(set(annotations) - {KEK_ANNOTATION})
        if unknown:
            raise PluginError(invalid, f"unknown annotation(s) {', '.join(unknown)}; expected {KEK_ANNOTATION}")
        if not annotations.get(KEK_ANNOTATION):
            raise PluginError(invalid, f"annotation {KEK_ANNOTATION} is missing: the data was not encrypted by kubekms")
        match = _KEY_ID.fullmatch(key_id)
        if match is None or (self.key_id is not None and match.group("key") != self.key_id):
            raise PluginError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"key_id {key_id[:80]!r} was not issued by this plugin (configured key {self.key_id or self._key_ref})",
            )
        if int(match.group("version")) > self.latest_version and self.key_id is not None:
            raise PluginError(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"key_id names version {match.group('version')} but the key's latest version is {self.latest_version}",
            )

    async def _unwrap(self, wrapped: bytes) -> AESGCM:
        try:
            plaintext = await self._backend.decrypt_data_key(self.key_id or self._key_ref, wrapped, aad=KEK_AAD)
        except (InvalidCiphertext, InvalidArgument) as error:
            # The caller's annotation, not a backend failure: the backend stays healthy.
            self._metrics.backend_calls.labels("decrypt-datakey", "error").inc()
            raise PluginError(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"annotation {KEK_ANNOTATION} is not a KEK wrapped by this key: {error.message}",
            ) from None
        except KMSError as error:
            raise self._backend_failure("decrypt-datakey", error) from None
        self._metrics.backend_calls.labels("decrypt-datakey", "ok").inc()
        cipher = AESGCM(plaintext)
        self._remember(wrapped, cipher)
        return cipher
