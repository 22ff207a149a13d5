"""From a KMSBackend object (and its Secrets) to an open :class:`~kubekms.backend.Backend`.

Opened backends hold a pooled HTTP session, so they are cached per KMSBackend uid and
``metadata.generation`` (a spec change opens a new one; status writes, which bump
resourceVersion, do not). A credentials error drops the cache entry, so a rotated
credentials Secret is picked up on the next call.

Handlers borrow a client with :meth:`BackendResolver.using` / :meth:`BackendResolver.lease`
and never hold one outside that block: a replaced or dropped client is only closed once
its last borrower is done, so no handler ever meets a closed session.

Provider gcp takes its service-account key JSON as a file: it is written (0600, in a 0700
directory) only for the moment the backend is opened, when the Google client reads it, and
removed right after, so the private key lives in memory, not on the pod's disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import fnmatch
import json
import logging
import os
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubekms.backend import Backend
from kubekms.errors import KMSError
from kubekms.providers import BackendConfig, Credentials, open_backend
from kubekms_operator import kube
from kubekms_operator.conditions import is_true
from kubekms_operator.spec import BackendSpec, InvalidSpec, SecretKeyRef, parse_backend

log = logging.getLogger("kubekms.operator.backends")

# KMSKeys of one KMSBackend handled at once: enough to keep a backend and the apiserver busy, and per
# backend, so that one that hangs or fails holds only its own KMSKeys.
BACKEND_CONCURRENCY = 64


class DependencyNotReady(Exception):
    """The KMSBackend, its Secret or the backend's health is not there yet; retry later.

    ``reason`` is the Synced reason the KMSKey reports: AccessDenied when the KMSBackend is
    not ready because the backend refused its credentials, else DependencyNotReady.
    """

    def __init__(self, message: str, reason: str = "DependencyNotReady") -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class ResolvedBackend:
    name: str
    backend: Backend
    adoption_namespaces: tuple[str, ...] = ()

    def check_adoption(self, namespace: str) -> None:
        """DependencyNotReady (AdoptionNotAllowed) unless the KMSBackend lets this namespace's KMSKeys take
        over its existing keys: the operator acts with the backend's credentials, whoever writes the KMSKey."""
        if not any(fnmatch.fnmatchcase(namespace, pattern) for pattern in self.adoption_namespaces):
            raise DependencyNotReady(
                f"KMSBackend {self.name} does not let KMSKeys of namespace {namespace} adopt its keys (spec.adopt):"
                " an administrator may add the namespace to the KMSBackend's spec.adoption.namespaces",
                "AdoptionNotAllowed",
            )


Opener = Callable[[BackendConfig], Awaitable[Backend]]


def key_backend(backend_ref: str | None, status: Mapping[str, Any]) -> str | None:
    """The KMSBackend of a KMSKey's key: spec.backendRef, else the one its key was made in (status.backend).
    The default KMSBackend decides only for a key not made yet: a later change of the default moves no key."""
    return backend_ref or str(status.get("backend") or "") or None


@dataclass
class _Client:
    """One opened backend and how many handlers are using it right now."""

    generation: int
    spec: BackendSpec
    backend: Backend
    users: int = 0
    retired: bool = False  # no new borrower; closed when the last one returns it


class BackendResolver:
    def __init__(
        self, opener: Opener = open_backend, ca_dir: Path | None = None, credentials_namespace: str = ""
    ) -> None:
        self._opener = opener
        self._credentials_namespace = credentials_namespace  # the only one Secrets are read from; "" any
        self._open: dict[str, _Client] = {}  # KMSBackend uid -> its current client
        self._watched: dict[str, dict[str, Any]] = {}  # name -> latest KMSBackend object
        self._locks: dict[str, asyncio.Lock] = {}
        self._slots: dict[str, asyncio.Semaphore] = {}  # KMSBackend name -> its KMSKeys' turns
        self._ca_dir = ca_dir  # made on first use: no I/O in the constructor

    def seen(self, obj: Mapping[str, Any], *, deleted: bool) -> None:
        """Keep the latest KMSBackend objects from kopf's watch, so keys need no GET per reconcile."""
        name = obj["metadata"]["name"]
        if deleted:
            self._watched.pop(name, None)
        else:
            self._watched[name] = copy.deepcopy(dict(obj))

    @contextlib.asynccontextmanager
    async def using(self, name: str | None, *, require_ready: bool = True) -> AsyncIterator[ResolvedBackend]:
        """The backend a KMSKey names (or the default one), borrowed for the block (one of its
        BACKEND_CONCURRENCY turns); DependencyNotReady if it cannot be used yet."""
        if name:
            obj = self._watched.get(name) or await kube.get_backend(name)
        else:
            obj = await self._default_backend()
        if obj is None:
            raise DependencyNotReady(f"KMSBackend {name!r} does not exist")
        backend_name = obj["metadata"]["name"]
        status = obj.get("status") or {}
        generation = obj["metadata"].get("generation")
        checked_this_spec = status.get("observedGeneration") == generation
        if require_ready and checked_this_spec and is_true(status.get("conditions"), "Ready") is False:
            ready: dict[str, Any] = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
            reason = "AccessDenied" if ready.get("reason") == "AccessDenied" else "DependencyNotReady"
            raise DependencyNotReady(f"KMSBackend {backend_name} is not ready: {ready.get('message', '')}", reason)
        slots = self._slots.setdefault(backend_name, asyncio.Semaphore(BACKEND_CONCURRENCY))
        async with slots, self._borrow(obj) as client:
            yield ResolvedBackend(backend_name, client.backend, client.spec.adoption_namespaces)

    async def _default_backend(self) -> dict[str, Any] | None:
        # Read afresh, never from the watch: a key placed by the default stays there (status.backend),
        # and the watch may not show yet a KMSBackend made default just before the KMSKey was created
        # (one default seen of two, the key was made in it instead of being refused).
        defaults = [b for b in await kube.list_backends() if (b.get("spec") or {}).get("default")]
        if len(defaults) > 1:
            names = ", ".join(sorted(b["metadata"]["name"] for b in defaults))
            raise DependencyNotReady(f"more than one default KMSBackend ({names}); name one in spec.backendRef")
        if not defaults:
            raise DependencyNotReady("no backendRef and no KMSBackend with default: true")
        return defaults[0]

    @contextlib.asynccontextmanager
    async def lease(self, obj: dict[str, Any]) -> AsyncIterator[Backend]:
        """The open client of a KMSBackend object, borrowed for the block."""
        async with self._borrow(obj) as client:
            yield client.backend

    @contextlib.asynccontextmanager
    async def _borrow(self, obj: dict[str, Any]) -> AsyncIterator[_Client]:
        client = await self._acquire(obj)
        try:
            yield client
        finally:
            client.users -= 1
            if client.retired and client.users == 0:
                await _close_quietly(client.backend)

    async def _acquire(self, obj: dict[str, Any]) -> _Client:
        uid, generation = obj["metadata"]["uid"], int(obj["metadata"].get("generation") or 0)
        async with self._locks.setdefault(uid, asyncio.Lock()):
            client = self._open.get(uid)
            if client is None or client.generation != generation:
                try:
                    spec = parse_backend(obj.get("spec") or {})
                except InvalidSpec as error:
                    raise DependencyNotReady(f"KMSBackend {obj['metadata']['name']}: {error}") from None
                async with self._config(obj["metadata"]["name"], uid, spec) as config:
                    opened = _Client(generation, spec, await self._opener(config))
                if client is not None:
                    await _retire(client)
                client = self._open[uid] = opened
            client.users += 1  # in the same step as the lookup: no retirement can come between
            return client

    async def forget(self, obj_uid: str) -> None:
        """Open a fresh client for this KMSBackend next time; the current one closes once unused."""
        client = self._open.pop(obj_uid, None)
        if client is not None:
            await _retire(client)

    async def forget_backend(self, backend: Backend) -> None:
        """Drop an open backend whose credentials were refused (the Secret may have changed)."""
        for uid, client in list(self._open.items()):
            if client.backend is backend:
                await self.forget(uid)

    async def close(self) -> None:
        for uid in list(self._open):
            await self.forget(uid)

    @contextlib.asynccontextmanager
    async def _config(self, name: str, uid: str, spec: BackendSpec) -> AsyncIterator[BackendConfig]:
        """The config to open the backend with, valid for the block (a gcp key file is removed after it)."""
        self._check_secret_namespaces(name, spec)
        ca_file = await self._ca_file(name, uid, spec) if spec.ca else None
        config = BackendConfig(
            provider=spec.provider,
            endpoint=spec.endpoint,
            project_id=spec.project_id,
            region=spec.region,
            key_ring=spec.key_ring,
            ca_file=ca_file,
        )
        if spec.credentials is None:  # aws or gcp: the pod's ambient cloud identity
            yield config
        elif spec.provider == "gcp":
            key_file = self._private_dir() / f"{uid}-{os.urandom(8).hex()}.json"
            _write_private(key_file, await self._service_account_key(name, spec))
            try:
                yield dataclasses.replace(config, credentials_file=key_file)
            finally:
                key_file.unlink(missing_ok=True)
        else:
            yield dataclasses.replace(config, credentials=await self._credentials(name, spec))

    def _check_secret_namespaces(self, name: str, spec: BackendSpec) -> None:
        """With a credentials namespace, a KMSBackend naming a Secret elsewhere gets nothing read: whoever
        may write a KMSBackend would otherwise have any Secret the operator can read sent to an endpoint
        of their choice as a credential."""
        allowed = self._credentials_namespace
        for what, ref in (("credentials", spec.credentials), ("CA", spec.ca)):
            if allowed and ref is not None and ref.namespace != allowed:
                raise DependencyNotReady(
                    f"KMSBackend {name}: {what} Secret {ref.namespace}/{ref.name} is not read: this operator reads"
                    f" Secrets only in namespace {allowed} (--credentials-namespace)"
                )

    def _private_dir(self) -> Path:
        if self._ca_dir is None:
            self._ca_dir = Path(tempfile.mkdtemp(prefix="kubekms-operator-"))  # mode 0700
        return self._ca_dir

    async def _secret_data(self, name: str, ref: SecretKeyRef, what: str) -> dict[str, bytes]:
        secret = await kube.read_secret(ref.namespace, ref.name)
        if secret is None:
            raise DependencyNotReady(f"KMSBackend {name}: {what} Secret {ref.namespace}/{ref.name} does not exist")
        return secret[1]

    async def _service_account_key(self, name: str, spec: BackendSpec) -> bytes:
        """The Secret's service-account key JSON, checked enough for a precise error (never its content)."""
        assert spec.credentials is not None
        ref, key = spec.credentials, spec.service_account_key_key
        raw = (await self._secret_data(name, ref, "credentials")).get(key, b"")
        try:
            info = json.loads(raw)
        except ValueError:
            info = None
        fields = ("client_email", "private_key", "token_uri")
        if not (
            isinstance(info, dict)
            and info.get("type") == "service_account"
            and all(isinstance(info.get(field), str) and info[field] for field in fields)
        ):
            raise DependencyNotReady(
                f"KMSBackend {name}: key {key} of Secret {ref.namespace}/{ref.name} must hold a service-account "
                f"key JSON (type service_account, with {', '.join(fields)})"
            )
        return raw

    async def _credentials(self, name: str, spec: BackendSpec) -> Credentials:
        assert spec.credentials is not None
        where = f"Secret {spec.credentials.namespace}/{spec.credentials.name}"
        data = await self._secret_data(name, spec.credentials, "credentials")
        mapping = {
            "access_key": data.get(spec.access_key_key, b"").decode(errors="replace"),
            "secret_key": data.get(spec.secret_key_key, b"").decode(errors="replace"),
        }
        if spec.security_token_key:
            mapping["security_token"] = data.get(spec.security_token_key, b"").decode(errors="replace")
        try:
            return Credentials.from_mapping(mapping, source=where)
        except KMSError:
            raise DependencyNotReady(
                f"KMSBackend {name}: {where} needs non-empty keys {spec.access_key_key} and {spec.secret_key_key}"
            ) from None

    async def _ca_file(self, name: str, uid: str, spec: BackendSpec) -> Path:
        assert spec.ca is not None
        secret = await kube.read_secret(spec.ca.namespace, spec.ca.name)
        bundle = (secret[1] if secret else {}).get(spec.ca_key)
        if not bundle:
            raise DependencyNotReady(
                f"KMSBackend {name}: CA Secret {spec.ca.namespace}/{spec.ca.name} has no key {spec.ca_key}"
            )
        path = self._private_dir() / f"{uid}.pem"
        _write_private(path, bundle)
        return path


def _write_private(path: Path, content: bytes) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)


async def _retire(client: _Client) -> None:
    client.retired = True
    if client.users == 0:
        await _close_quietly(client.backend)


async def _close_quietly(backend: Backend) -> None:
    try:
        await backend.close()
    except Exception:  # closing a replaced client must never fail a reconcile
        log.warning("closing a replaced backend client failed", exc_info=True)
