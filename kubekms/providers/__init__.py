"""Providers of the backend protocol, opened by name from one typed config.

Providers never import each other; this module imports each lazily so that, e.g.,
the AWS SDK is loaded only when provider ``aws`` is asked for.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from kubekms.backend import Backend
from kubekms.credentials import Credentials
from kubekms.errors import InvalidArgument

# provider name -> "module:factory"; each factory is ``async def open(config) -> Backend``.
PROVIDERS: dict[str, str] = {
    "local": "kubekms.providers.local:open_backend",
    "kubekms": "kubekms.providers.rest:open_kubekms_backend",
    "huaweicloud": "kubekms.providers.rest:open_huaweicloud_backend",
    "aws": "kubekms.providers.aws:open_backend",
    "gcp": "kubekms.providers.gcp:open_backend",
}

__all__ = ["PROVIDERS", "BackendConfig", "Credentials", "open_backend"]


@dataclass(frozen=True)
class BackendConfig:
    """Where a backend is and how to authenticate to it.

    provider: one of PROVIDERS.
    endpoint: base URL of the KMS (``http(s)://host:port``); unused by ``local``.
    project_id: tenant/project the keys live in (Huawei project id; ``local`` too).
    region: cloud region (huaweicloud/aws); informational for ``kubekms``.
    credentials_file: YAML file with ``access_key``, ``secret_key`` and optional
        ``security_token``: never passed on a command line.
    credentials: the same, already loaded (e.g. by the operator from a Secret);
        takes precedence over ``credentials_file``.
    ca_file: PEM bundle to verify the endpoint's TLS certificate.
    state_dir: ``local`` only: the keystore's directory (root key + SQLite file).
    init: ``local`` only: create the root key if it is missing (otherwise refuse).
    cmk_limit: ``local`` only: most customer master keys the keystore holds.
    key_ring: ``gcp`` only: the Cloud KMS key ring id (in ``project_id`` and location ``region``).
    """

    provider: str
    endpoint: str = ""
    project_id: str = "default"
    region: str = ""
    credentials_file: Path | None = None
    credentials: Credentials | None = None
    ca_file: Path | None = None
    state_dir: Path | None = None
    init: bool = False
    cmk_limit: int = 1000
    key_ring: str = ""

    def load_credentials(self) -> Credentials:
        if self.credentials is not None:
            return self.credentials
        if self.credentials_file is None:
            raise InvalidArgument(f"provider {self.provider!r} needs credentials (a credentials file or Secret)")
        return Credentials.from_file(self.credentials_file)


async def open_backend(config: BackendConfig) -> Backend:
    target = PROVIDERS.get(config.provider)
    if target is None:
        raise InvalidArgument(f"unknown backend provider {config.provider!r}; known: {', '.join(sorted(PROVIDERS))}")
    module_name, _, factory_name = target.partition(":")
    factory = getattr(importlib.import_module(module_name), factory_name)
    backend: Backend = await factory(config)
    return backend
