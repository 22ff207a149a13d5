"""From a KMSBackend object (and its Secrets) to an open :class:`~kubekms.backend.Backend`.

Opened backends hold a pooled HTTP session, so they are cached per KMSBackend uid and
``metadata.generation`` (a spec change opens a new one and closes the old; status
writes, which bump resourceVersion, do not). A credentials error drops the cache entry,
so a rotated credentials Secret is picked up on the next call.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import os
import tempfile
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubekms.backend import Backend
from kubekms.errors import KMSError
from kubekms.providers import BackendConfig, Credentials, open_backend
from kubekms_operator import kube
from kubekms_operator.conditions import is_true
from kubekms_operator.spec import BackendSpec, InvalidSpec, parse_backend

log = logging.getLogger("kubekms.operator.backends")


class DependencyNotReady(Exception):
    """The KMSBackend, its Secret or the backend's health is not there yet; retry later."""


@dataclass(frozen=True)
class ResolvedBackend:
    name: str
    backend: Backend


Opener = Callable[[BackendConfig], Awaitable[Backend]]


class BackendResolver:
    def __init__(self, opener: Opener = open_backend, ca_dir: Path | None = None) -> None:
        self._opener = opener
        self._open: dict[str, tuple[int, Backend]] = {}  # uid -> (generation, backend)
        self._watched: dict[str, dict[str, Any]] = {}  # name -> latest KMSBackend object
        self._locks: dict[str, asyncio.Lock] = {}
        self._ca_dir = ca_dir  # made on first use: no I/O in the constructor

    def seen(self, obj: Mapping[str, Any], *, deleted: bool) -> None:
        """Keep the latest KMSBackend objects from kopf's watch, so keys need no GET per reconcile."""
        name = obj["metadata"]["name"]
        if deleted:
            self._watched.pop(name, None)
        else:
            self._watched[name] = copy.deepcopy(dict(obj))

    async def resolve(self, name: str | None, *, require_ready: bool = True) -> ResolvedBackend:
        """The backend a KMSKey names (or the default one); DependencyNotReady if it cannot be used yet."""
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
            message = next((c.get("message") for c in status.get("conditions") or [] if c.get("type") == "Ready"), "")
            raise DependencyNotReady(f"KMSBackend {backend_name} is not ready: {message}")
        return ResolvedBackend(backend_name, await self.open(obj))

    async def _default_backend(self) -> dict[str, Any] | None:
        defaults = [b for b in self._watched.values() if (b.get("spec") or {}).get("default")]
        if len(defaults) != 1:  # the watch may lag a change made a moment ago: ask the apiserver
            defaults = [b for b in await kube.list_backends() if (b.get("spec") or {}).get("default")]
        if len(defaults) > 1:
            names = ", ".join(sorted(b["metadata"]["name"] for b in defaults))
            raise DependencyNotReady(f"more than one default KMSBackend ({names}); name one in spec.backendRef")
        if not defaults:
            raise DependencyNotReady("no backendRef and no KMSBackend with default: true")
        return defaults[0]

    async def open(self, obj: dict[str, Any]) -> Backend:
        uid, generation = obj["metadata"]["uid"], int(obj["metadata"].get("generation") or 0)
        lock = self._locks.setdefault(uid, asyncio.Lock())
        async with lock:
            cached = self._open.get(uid)
            if cached and cached[0] == generation:
                return cached[1]
            try:
                spec = parse_backend(obj.get("spec") or {})
            except InvalidSpec as error:
                raise DependencyNotReady(f"KMSBackend {obj['metadata']['name']}: {error}") from None
            backend = await self._opener(await self._config(obj["metadata"]["name"], uid, spec))
            self._open[uid] = (generation, backend)
        if cached:
            await _close_quietly(cached[1])
        return backend

    async def forget(self, obj_uid: str) -> None:
        cached = self._open.pop(obj_uid, None)
        if cached:
            await _close_quietly(cached[1])

    async def forget_backend(self, backend: Backend) -> None:
        """Drop an open backend whose credentials were refused (the Secret may have changed)."""
        for uid, (_, cached) in list(self._open.items()):
            if cached is backend:
                await self.forget(uid)

    async def close(self) -> None:
        for uid in list(self._open):
            await self.forget(uid)

    async def _config(self, name: str, uid: str, spec: BackendSpec) -> BackendConfig:
        credentials = await self._credentials(name, spec) if spec.credentials is not None else None
        ca_file = await self._ca_file(name, uid, spec) if spec.ca else None
        return BackendConfig(
            provider=spec.provider,
            endpoint=spec.endpoint,
            project_id=spec.project_id,
            region=spec.region,
            credentials=credentials,  # None only for aws: the pod's ambient AWS identity
            ca_file=ca_file,
        )

    async def _credentials(self, name: str, spec: BackendSpec) -> Credentials:
        assert spec.credentials is not None
        secret = await kube.read_secret(spec.credentials.namespace, spec.credentials.name)
        where = f"Secret {spec.credentials.namespace}/{spec.credentials.name}"
        if secret is None:
            raise DependencyNotReady(f"KMSBackend {name}: credentials {where} does not exist")
        data = secret[1]
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
        if self._ca_dir is None:
            self._ca_dir = Path(tempfile.mkdtemp(prefix="kubekms-operator-ca-"))  # mode 0700
        path = self._ca_dir / f"{uid}.pem"
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(bundle)
        return path


async def _close_quietly(backend: Backend) -> None:
    try:
        await backend.close()
    except Exception:  # closing a replaced client must never fail a reconcile
        log.warning("closing a replaced backend client failed", exc_info=True)
