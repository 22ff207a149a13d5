"""One version of a key on its page: its state, and enabling or disabling it.

Only the server's own keystore has per-version states (``LocalBackend``), so the console asks
the project's backend for :class:`VersionSwitch` and shows no version actions without it. The
permission is the one the Cloud KMS wire asks for ``UpdateCryptoKeyVersion`` (enable-key or
disable-key on the key): one mapping, :func:`~kubekms.server.gcp_grpc.version_state_permission`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from kubekms.backend import Backend, KeyMetadata
from kubekms.errors import InvalidArgument
from kubekms.server.console.forms import Form


@runtime_checkable
class VersionSwitch(Protocol):
    async def disabled_versions(self, key_id: str) -> frozenset[int]: ...

    async def set_version_enabled(self, key_id: str, version: int, *, enabled: bool) -> None: ...


@dataclass(frozen=True)
class VersionRow:
    number: int
    enabled: bool
    primary: bool


async def version_rows(backend: Backend, key: KeyMetadata) -> list[VersionRow] | None:
    """The key's versions, newest first; None when the backend keeps no per-version state."""
    if not isinstance(backend, VersionSwitch):
        return None
    disabled = await backend.disabled_versions(key.key_id)
    return [
        VersionRow(number, number not in disabled, number == key.current_version)
        for number in range(key.current_version, 0, -1)
    ]


async def set_version(backend: Backend, key: str, form: Form, *, enabled: bool) -> str:
    if not isinstance(backend, VersionSwitch):
        raise InvalidArgument("this project's keystore has no per-version state")
    version = form.integer("version", (1, 2**31 - 1))
    await backend.set_version_enabled(key, version, enabled=enabled)
    return f"Version {version} is {'enabled' if enabled else 'disabled'}."
