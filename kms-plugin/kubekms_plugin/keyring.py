"""The plugin's key hierarchy: backend key → local KEK (in memory) → the apiserver's DEK seed.

Encrypt seals the seed under the current KEK and hands back the backend-wrapped KEK for
the annotation (byte layout: :mod:`kubekms.plugin_ciphertext`). Decrypt finds the KEK in a
bounded LRU cache keyed by that wrapped form, and only on a miss asks the backend to unwrap
it: once per wrapped KEK however many Decrypts wait for it (a restarted kube-apiserver decrypts
its DEK seeds at once, most of them under the same KEK). A poller keeps the backend key's
version current; a new version means a new KEK and a new key_id (``<backend key
id>:v<version>``), so the key_id changes on every rotation and never returns to an earlier value.
A configured alias that comes to name another backend key is followed the same way (a new KEK
under the new key, a new key_id); Decrypt keeps opening what any earlier key wrapped, since a KEK
is unwrapped under the backend key its key_id names, which the backend authorises.

Pure domain: no gRPC here. Failures are the :class:`KeyringError` subclasses below; the
gRPC service checks request limits and maps these classes to status codes.

Threads: the async methods run on the plugin's event loop; :meth:`Keyring.health`,
:meth:`Keyring.announce`, :meth:`Keyring.encrypt_now` and :meth:`Keyring.decrypt_now` (the calls
that need no backend) may run on any thread. What those share with the loop (KEK use counts, the
cache's order) changes only under one lock, held for a few dictionary operations.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kubekms import plugin_ciphertext
from kubekms.backend import SYMMETRIC_KEY_SPEC, Backend, KeyState
from kubekms.errors import InvalidArgument, InvalidCiphertext, KMSError
from kubekms.plugin_ciphertext import KEK_AAD, KEK_ANNOTATION
from kubekms_plugin.config import KekPolicy
from kubekms_plugin.metrics import PluginMetrics

logger = logging.getLogger(__name__)
KEK_BYTES = 32  # every KEK is an AES-256 key
# A poll replaces the current KEK this share of kek.max_age (at most MAX_RENEW_AHEAD seconds) before it
# reaches that age, so that Status never reports an aged KEK while the backend answers.
RENEW_AHEAD_FRACTION = 0.25
MAX_RENEW_AHEAD = 300.0
# A Decrypt naming a version of the key beyond the latest one polled makes the keyring poll at once (another
# plugin of an HA control plane may have seen the rotation first), at most once per this many seconds.
MIN_CATCH_UP = 1.0


class KeyringError(Exception):
    """Base class; ``message`` is safe to hand to the caller (never key material)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadCiphertext(KeyringError):
    """What the caller sent cannot be opened: a malformed or tampered ciphertext, or a wrapped
    KEK the backend refuses. The caller's error; the backend stays healthy."""


class ForeignKeyId(KeyringError):
    """The key_id was not issued by this keyring: a key the backend does not unwrap this KEK under, or a
    version the key does not have yet."""


class KeyNotEnabled(KeyringError):
    """The backend key is disabled or pending deletion: nothing can be encrypted under it."""


class BackendFailure(KeyringError):
    """A backend call failed; ``retryable`` when repeating it may succeed."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class Sealed(NamedTuple):
    ciphertext: bytes
    key_id: str
    wrapped_kek: bytes


@dataclass
class Kek:
    cipher: AESGCM
    wrapped: bytes
    version: int
    backend_key_id: str  # the backend key that wrapped it
    key_id: str  # the plugin key_id Encrypt reports for seeds sealed under this KEK
    key_id_bytes: bytes  # its UTF-8 form, the seal's associated data (encoded once, not per call)
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
        self._unwrapping: dict[
            tuple[str, bytes], asyncio.Task[AESGCM]
        ] = {}  # one backend call per wrapped KEK in flight
        self._cache_hit = metrics.kek_cache.labels("hit")  # label children bound once, not per call
        self._cache_miss = metrics.kek_cache.labels("miss")
        self._new_kek_lock = asyncio.Lock()
        self._lock = threading.Lock()  # KEK use counts and the cache, changed from several threads
        self.key_id: str | None = None  # the backend key's id (the configured ref may be an alias)
        # Every backend key the configured ref has named in this process, or whose KEK the backend unwrapped:
        # their key_ids open from the cache; any other key_id goes to the backend first.
        self._known_keys: set[str] = set()
        self.latest_version = 0
        self.key_state: KeyState | None = None
        self.current: Kek | None = None
        # The KEK of the version kube-apiserver last heard of through Status: Encrypt keeps using it
        # until Status announced the new key_id (the apiserver drops an Encrypt whose key_id differs
        # from the last Status answer and marks the plugin unhealthy).
        self._announced: Kek | None = None
        self.backend_error: str | None = None
        self._caught_up_at = float("-inf")  # when a Decrypt last made the keyring poll (the keyring's clock)
        self._catching_up: asyncio.Task[None] | None = None  # the poll a Decrypt of a newer version waits for

    # --- health, answered from memory -----------------------------------------------------

    def _kek_fresh(self, kek: Kek | None, ahead: float = 0.0) -> bool:
        """Usable for Encrypt by its uses and its age, ``ahead`` seconds from now."""
        return (
            kek is not None
            and kek.uses < self._policy.max_encryptions
            and self._clock() - kek.created_at < self._policy.max_age - ahead
        )

    def _kek_usable(self, kek: Kek | None, ahead: float = 0.0) -> bool:
        """Encrypt may use it: fresh, of the configured key. Also of an older version of that key until the
        new version's KEK exists: it encrypts as well as ever, and Status still announces it meanwhile."""
        return (
            kek is not None
            and self._kek_fresh(kek, ahead)
            and kek.backend_key_id == (self.key_id or kek.backend_key_id)
        )

    def _kek_up_to_date(self, kek: Kek | None, ahead: float = 0.0) -> bool:
        """Usable and of the key's latest version: no new KEK is needed."""
        return kek is not None and self._kek_usable(kek, ahead) and kek.version >= self.latest_version

    @property
    def renew_ahead(self) -> float:
        """Seconds before the current KEK reaches max_age that a poll replaces it: Status stays ok meanwhile."""
        return min(MAX_RENEW_AHEAD, self._policy.max_age * RENEW_AHEAD_FRACTION)

    def renewal_in(self) -> float | None:
        """Seconds until a poll should replace the current KEK for its age (None: no KEK yet)."""
        current = self.current
        if current is None:
            return None
        return current.created_at + self._policy.max_age - self.renew_ahead - self._clock()

    def health(self) -> str:
        """``ok`` exactly when an Encrypt would succeed now; otherwise a short reason."""
        if self.key_state is not None and self.key_state is not KeyState.ENABLED:
            return f"backend key {self.key_id} is {self.key_state.name.lower().replace('_', ' ')}"
        if self._kek_usable(self.current):
            return "ok"
        if self.backend_error is not None:
            return f"no usable KEK: {self.backend_error}"
        if self.current is not None:  # used up, aged, or of a key the configured one no longer names
            return "no usable KEK: waiting for the next backend poll to make a new one"
        return "no KEK yet: waiting for the first backend poll"

    def announce(self) -> str:
        """The key_id for a Status answer; from now on Encrypt may use the current KEK.

        ``current`` is read once: the poll may replace it meanwhile, and the KEK remembered for Encrypt
        must be the one whose key_id Status reports."""
        current = self._announced = self.current
        return _reported_key_id(current)

    def _kek_for_encrypt(self) -> Kek | None:
        announced, current = self._announced, self.current
        if (
            announced is not None
            and current is not None
            and announced.key_id != current.key_id
            and self._kek_fresh(announced)
        ):
            return announced  # a rotation (or an alias moved) the apiserver has not heard of yet
        return current if self._kek_usable(current) else None

    def reported_key_id(self) -> str:
        return _reported_key_id(self.current)

    # --- backend -------------------------------------------------------------------------

    def _backend_failure(self, operation: str, error: KMSError) -> BackendFailure:
        self._metrics.backend_calls.labels(operation, "error").inc()
        if error.retryable:
            message = f"backend {self._backend_name} unavailable ({operation}): {error.message}"
        else:
            message = f"backend {self._backend_name} refused {operation}: {error.message}"
        self.backend_error = message
        return BackendFailure(message, retryable=error.retryable)

    async def refresh(self) -> None:
        """One poll: learn the key's id, state and current version; make a new KEK when needed."""
        try:
            metadata = await self._backend.describe_key(self._key_ref)
        except KMSError as error:
            raise self._backend_failure("describe-key", error) from None
        self._metrics.backend_calls.labels("describe-key", "ok").inc()
        if metadata.key_spec != SYMMETRIC_KEY_SPEC:
            refusal = (
                f"key {metadata.key_id} is {metadata.key_spec} {metadata.key_usage}: "
                f"the KMS v2 plugin uses {SYMMETRIC_KEY_SPEC} (symmetric) keys only"
            )
            if self.backend_error != refusal:  # logged once, not at every poll
                logger.error("unusable key", extra={"fields": {"reason": refusal}})
            self.backend_error = refusal
            return
        self.backend_error = None
        latest = max(self.latest_version, metadata.current_version)
        if metadata.key_id != self.key_id:  # the first poll, or the configured alias names another key now
            if self.key_id is not None:
                logger.warning(
                    "configured key names another backend key",
                    extra={"fields": {"key": self._key_ref, "was": self.key_id, "now": metadata.key_id}},
                )
            latest = metadata.current_version  # versions count per backend key
            self._known_keys.add(metadata.key_id)
        # Decrypt on another thread may look between these statements: the version count is lowered only once
        # key_id names the new key, so no state it passes through refuses a seed either key issued.
        self.latest_version = max(self.latest_version, latest)
        self.key_id, self.key_state = metadata.key_id, metadata.state
        self.latest_version = latest
        if metadata.state is KeyState.ENABLED and not self._kek_up_to_date(self.current, self.renew_ahead):
            await self._new_kek(self.renew_ahead)

    async def _new_kek(self, ahead: float = 0.0) -> Kek:
        """A new current KEK, unless the current one is up to date (for ``ahead`` seconds more)."""
        async with self._new_kek_lock:
            if self._kek_up_to_date(self.current, ahead):
                assert self.current is not None
                return self.current
            key_ref = self.key_id or self._key_ref
            try:
                data_key = await self._backend.create_data_key(key_ref, length=KEK_BYTES, aad=KEK_AAD)
            except KMSError as error:
                raise self._backend_failure("create-datakey", error) from None
            self._metrics.backend_calls.labels("create-datakey", "ok").inc()
            self._metrics.keks_created.inc()
            assert data_key.plaintext is not None
            cipher = AESGCM(data_key.plaintext)
            self.key_id = data_key.key_id
            self._known_keys.add(data_key.key_id)
            self.latest_version = max(self.latest_version, data_key.key_version)
            key_id = plugin_ciphertext.key_id(data_key.key_id, data_key.key_version)
            kek = Kek(
                cipher=cipher,
                wrapped=data_key.ciphertext,
                version=data_key.key_version,
                backend_key_id=data_key.key_id,
                key_id=key_id,
                key_id_bytes=key_id.encode(),
                created_at=self._clock(),
            )
            self._remember(kek.wrapped, cipher)
            previous = self.current
            self.current = kek
            self._metrics.set_current_key(key_id)
            if previous is None or previous.key_id != kek.key_id:
                logger.info("new key_id", extra={"fields": {"key_id": key_id}})
            return kek

    def _remember(self, wrapped: bytes, cipher: AESGCM) -> None:
        with self._lock:
            self._cache[wrapped] = cipher
            self._cache.move_to_end(wrapped)
            while len(self._cache) > self._policy.cache_size:
                self._cache.popitem(last=False)

    # --- the two crypto calls ------------------------------------------------------------

    def encrypt_now(self, seed: bytes) -> Sealed | None:
        """Seal under a usable KEK, any thread; None when a new KEK is needed (:meth:`encrypt`)."""
        if self.key_state is not None and self.key_state is not KeyState.ENABLED:
            raise KeyNotEnabled(self.health())
        with self._lock:  # the use is counted with the check: never past max_encryptions
            kek = self._kek_for_encrypt()
            if kek is None:
                return None
            kek.uses += 1
        return self._seal(kek, seed)

    async def encrypt(self, seed: bytes) -> Sealed:
        sealed = self.encrypt_now(seed)
        if sealed is not None:
            return sealed
        kek = await self._new_kek()
        with self._lock:
            kek.uses += 1
        return self._seal(kek, seed)

    @staticmethod
    def _seal(kek: Kek, seed: bytes) -> Sealed:
        return Sealed(plugin_ciphertext.seal(kek.cipher, seed, kek.key_id_bytes), kek.key_id, kek.wrapped)

    def decrypt_now(self, ciphertext: bytes, key_id: str, wrapped_kek: bytes) -> bytes | None:
        """Open with a cached KEK, any thread; None on a cache miss (:meth:`decrypt`)."""
        try:
            plugin_ciphertext.check_layout(ciphertext)
        except InvalidCiphertext as error:
            raise BadCiphertext(error.message) from None
        if self._beyond_latest(key_id):
            return None  # a version another plugin may have polled first: decrypt polls now
        if self._check_key_id(key_id) not in self._known_keys:
            return None  # the backend decides whether it unwraps this KEK under that key (decrypt)
        with self._lock:
            cipher = self._cache.get(wrapped_kek)
            if cipher is not None:
                self._cache.move_to_end(wrapped_kek)
        if cipher is None:
            return None
        self._cache_hit.inc()
        return self._open(cipher, ciphertext, key_id)

    async def decrypt(self, ciphertext: bytes, key_id: str, wrapped_kek: bytes) -> bytes:
        plaintext = self.decrypt_now(ciphertext, key_id, wrapped_kek)
        if plaintext is None and self._beyond_latest(key_id) and await self._caught_up():
            plaintext = self.decrypt_now(ciphertext, key_id, wrapped_kek)
        if plaintext is not None:
            return plaintext
        self._cache_miss.inc()
        backend_key_id = self._check_key_id(key_id)
        return self._open(await self._unwrap_once(backend_key_id, wrapped_kek), ciphertext, key_id)

    @staticmethod
    def _open(cipher: AESGCM, ciphertext: bytes, key_id: str) -> bytes:
        try:
            return plugin_ciphertext.open_sealed(cipher, ciphertext, key_id.encode())
        except InvalidCiphertext as error:
            raise BadCiphertext(error.message) from None

    def _beyond_latest(self, key_id: str) -> bool:
        """The key_id names the current backend key at a version this keyring has not polled (yet)."""
        parsed = plugin_ciphertext.parse_key_id(key_id)
        return parsed is not None and parsed[0] == self.key_id and parsed[1] > self.latest_version

    async def _caught_up(self) -> bool:
        """Poll now for a Decrypt that names a newer version: in an HA control plane another apiserver's plugin
        may have seen the rotation first and sealed under it. One poll for every Decrypt waiting, at most one per
        MIN_CATCH_UP seconds (False: the last such poll was more recent; the version is then refused)."""
        task = self._catching_up
        if task is None:
            if self._clock() - self._caught_up_at < MIN_CATCH_UP:
                return False
            self._caught_up_at = self._clock()
            task = self._catching_up = asyncio.create_task(self.refresh())
            task.add_done_callback(self._caught_up_done)
        await asyncio.shield(task)
        return True

    def _caught_up_done(self, task: asyncio.Task[None]) -> None:
        self._catching_up = None
        if not task.cancelled():
            task.exception()  # retrieved: the Decrypts that waited got it

    def _check_key_id(self, key_id: str) -> str:
        """The backend key id a well-formed key_id names; ForeignKeyId for one the plugin cannot have issued."""
        parsed = plugin_ciphertext.parse_key_id(key_id)
        if parsed is None:
            raise ForeignKeyId(self._not_issued(key_id))
        backend_key_id, version = parsed
        if backend_key_id == self.key_id and version > self.latest_version:
            raise ForeignKeyId(f"key_id names version {version} but the key's latest version is {self.latest_version}")
        return backend_key_id

    def _not_issued(self, key_id: str) -> str:
        return f"key_id {key_id[:80]!r} was not issued by this plugin (configured key {self.key_id or self._key_ref})"

    def _unwrap_once(self, backend_key_id: str, wrapped: bytes) -> asyncio.Future[AESGCM]:
        """The unwrap of ``wrapped`` under that key in flight, started if none is: every waiter shares its answer.

        Shielded: a caller that gives up (its deadline) does not cancel the call for the others."""
        call = (backend_key_id, wrapped)
        task = self._unwrapping.get(call)
        if task is None:
            task = self._unwrapping[call] = asyncio.create_task(self._unwrap(backend_key_id, wrapped))
            task.add_done_callback(lambda _: self._unwrapping.pop(call, None))
        return asyncio.shield(task)

    async def _unwrap(self, backend_key_id: str, wrapped: bytes) -> AESGCM:
        """The KEK ``wrapped`` holds, unwrapped by the backend under the key its key_id names."""
        known = backend_key_id in self._known_keys
        try:
            plaintext = await self._backend.decrypt_data_key(backend_key_id, wrapped, aad=KEK_AAD)
        except (InvalidCiphertext, InvalidArgument) as error:
            self._metrics.backend_calls.labels("decrypt-datakey", "error").inc()
            if not known:
                raise ForeignKeyId(f"{self._not_issued(backend_key_id)}: {error.message}") from None
            raise BadCiphertext(
                f"annotation {KEK_ANNOTATION} is not a KEK wrapped by this key: {error.message}"
            ) from None
        except KMSError as error:
            if not known and not error.retryable:  # e.g. no such key, or not one this plugin may use
                self._metrics.backend_calls.labels("decrypt-datakey", "error").inc()
                raise ForeignKeyId(f"{self._not_issued(backend_key_id)}: {error.message}") from None
            raise self._backend_failure("decrypt-datakey", error) from None
        self._metrics.backend_calls.labels("decrypt-datakey", "ok").inc()
        if len(plaintext) != KEK_BYTES:
            raise BadCiphertext(
                f"annotation {KEK_ANNOTATION} unwraps to {len(plaintext)} bytes, not a {KEK_BYTES}-byte KEK"
            )
        self._known_keys.add(backend_key_id)
        cipher = AESGCM(plaintext)
        self._remember(wrapped, cipher)
        return cipher


def _reported_key_id(current: Kek | None) -> str:
    if current is None:
        return "kubekms-uninitialised"  # never issued by Encrypt; Decrypt refuses it
    return current.key_id
