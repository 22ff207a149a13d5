"""Fault injection for the crash test only, kept at the edge: the reconcile logic knows nothing of it.

With ``KUBEKMS_OPERATOR_FAULT=after-create`` in the operator's environment (read once, when the
handlers are registered), every opened backend is wrapped so that the process exits at once
(status 17) right after the backend created a key, before the key id can reach the KMSKey's
status: the window that idempotent creation must survive (tests/operator/test_operator_crash.py).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, cast

from kubekms.backend import Backend, KeyMetadata
from kubekms.providers import BackendConfig
from kubekms_operator.backends import Opener

FAULT_ENV = "KUBEKMS_OPERATOR_FAULT"
AFTER_CREATE = "after-create"
EXIT_STATUS = 17


class _ExitAfterCreate:
    """A backend that ends the process once ``create_key`` returned; every other call passes through."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)

    async def create_key(self, alias: str, **options: Any) -> KeyMetadata:
        await self._backend.create_key(alias, **options)
        os._exit(EXIT_STATUS)


def with_faults(opener: Opener, environ: Mapping[str, str] = os.environ) -> Opener:
    """``opener`` itself, or one whose backends carry the fault ``environ`` names."""
    fault = environ.get(FAULT_ENV, "")
    if not fault:
        return opener
    if fault != AFTER_CREATE:
        raise ValueError(f"{FAULT_ENV}={fault!r}: the only fault is {AFTER_CREATE!r}")

    async def open_faulty(config: BackendConfig) -> Backend:
        return cast(Backend, _ExitAfterCreate(await opener(config)))

    return open_faulty
