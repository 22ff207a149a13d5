"""Launcher of a real ``kubekms server`` process on a free loopback port, for tests and ``kubekms dev``.

Layout of ``state_dir``::

    keystore/             the server's state_dir (one keystore per project)
    principals.yaml       every principal with its access key and secret (mode 0600)
    credentials/<n>.yaml  access_key/secret_key of principal <n> (mode 0600), for clients
    server.yaml           the server's config file
    server.log, audit.log

Credentials are generated once per principal name and kept, so a second launch on the same
directory (or :meth:`KMSServer.start` after :meth:`KMSServer.stop`) serves the same identities.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import yaml

from kubekms.devenv.processes import ManagedProcess, free_port, kubekms_argv
from kubekms.private_files import write_private
from kubekms.providers import BackendConfig, open_backend

ADMIN = "admin"
START_TIMEOUT = 60.0


@dataclass(frozen=True)
class Principal:
    """An identity of the server: wire operation names, key ids or aliases, projects ("*" = all)."""

    name: str
    actions: Sequence[str] = ("*",)
    keys: Sequence[str] = ("*",)
    projects: Sequence[str] = ("*",)


class KMSServer:
    def __init__(
        self,
        state_dir: Path,
        *,
        principals: Sequence[Principal] = (),
        project_id: str = "default",
        cmk_limit: int = 1000,
        maintenance_interval: float = 10.0,
    ) -> None:
        self.state_dir = state_dir
        self.project_id = project_id
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log = state_dir / "server.log"
        self.audit_log = state_dir / "audit.log"
        self._keystore_dir = state_dir / "keystore"
        self._config_path = state_dir / "server.yaml"
        self._credentials_dir = state_dir / "credentials"
        state_dir.mkdir(parents=True, exist_ok=True)
        self._credentials_dir.mkdir(mode=0o700, exist_ok=True)
        everyone = [Principal(ADMIN), *(p for p in principals if p.name != ADMIN)]
        self._write_principals(everyone)
        self._config_path.write_text(
            yaml.safe_dump(
                {
                    "listen": f"127.0.0.1:{self.port}",
                    "state_dir": str(self._keystore_dir),
                    "principals_file": str(state_dir / "principals.yaml"),
                    "audit_log": str(self.audit_log),
                    "cmk_limit": cmk_limit,
                    "maintenance_interval": maintenance_interval,
                    # one process: tests read the audit log in call order, which several workers (each
                    # flushing its own batches) do not keep; a test of workers sets more in server.yaml
                    "workers": 1,
                }
            )
        )
        self._process: ManagedProcess | None = None

    def _write_principals(self, principals: Sequence[Principal]) -> None:
        entries = []
        for principal in principals:
            credentials_path = self.credentials_file(principal.name)
            if credentials_path.exists():
                credentials = yaml.safe_load(credentials_path.read_text())
            else:
                credentials = {"access_key": "AK" + secrets.token_hex(10).upper(), "secret_key": secrets.token_hex(20)}
                write_private(credentials_path, yaml.safe_dump(credentials).encode())
            entries.append(
                {
                    "name": principal.name,
                    "access_key": credentials["access_key"],
                    "secret_key": credentials["secret_key"],
                    "actions": list(principal.actions),
                    "keys": list(principal.keys),
                    "projects": list(principal.projects),
                }
            )
        write_private(self.state_dir / "principals.yaml", yaml.safe_dump(entries).encode())

    def credentials_file(self, name: str) -> Path:
        """YAML with access_key and secret_key of principal ``name`` (mode 0600)."""
        return self._credentials_dir / f"{name}.yaml"

    def backend_config(self, principal: str = ADMIN) -> BackendConfig:
        """How a client reaches this server as ``principal`` (provider kubekms)."""
        return BackendConfig(
            provider="kubekms",
            endpoint=self.endpoint,
            project_id=self.project_id,
            credentials_file=self.credentials_file(principal),
        )

    def aws_client(
        self, principal: str = ADMIN, *, region: str = "eu-west-1", max_attempts: int | None = 1, validate: bool = True
    ) -> Any:
        """A boto3 KMS client on the AWS wire as ``principal`` (its account is the server's project).

        ``max_attempts=1`` makes every refusal reach the caller at once (None: botocore's retries);
        ``validate=False`` turns off botocore's client-side checks so that the server's own are tested.
        """
        credentials = yaml.safe_load(self.credentials_file(principal).read_text())
        retries: Any = {"mode": "standard", "max_attempts": max_attempts} if max_attempts is not None else None
        return boto3.client(
            "kms",
            endpoint_url=self.endpoint,
            region_name=region,
            aws_access_key_id=credentials["access_key"],
            aws_secret_access_key=credentials["secret_key"],
            config=botocore.config.Config(retries=retries, parameter_validation=validate),
        )

    def call(self, operation: str, *args: Any, principal: str = ADMIN, **kwargs: Any) -> Any:
        """One backend-protocol call over HTTP as ``principal``, synchronously (tests and tools)."""

        async def run() -> Any:
            backend = await open_backend(self.backend_config(principal))
            try:
                return await getattr(backend, operation)(*args, **kwargs)
            finally:
                await backend.close()

        return asyncio.run(run())

    def start(self) -> None:
        """Start the server (``--init`` on the first start) and wait until /healthz answers."""
        argv = kubekms_argv("server")
        argv += ["--config", str(self._config_path)]
        if not self._keystore_dir.exists():
            argv.append("--init")
        self._process = ManagedProcess("kubekms-server", argv, self.log)
        self._process.start()
        self._process.wait_until(self._healthy, START_TIMEOUT, "serving /healthz")

    def _healthy(self) -> bool:
        with urllib.request.urlopen(f"{self.endpoint}/healthz", timeout=2) as answer:  # noqa: S310 (our loopback URL)
            return bool(answer.status == 200)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.running

    @property
    def pid(self) -> int | None:
        return None if self._process is None or self._process.process is None else self._process.process.pid

    def stop(self) -> None:
        """SIGTERM (graceful: requests in flight finish, the audit buffer is written)."""
        if self._process is not None:
            self._process.stop()

    def kill(self) -> None:
        """SIGKILL, for crash tests."""
        if self._process is not None:
            self._process.kill()


@contextlib.contextmanager
def kms_server(
    state_dir: Path,
    *,
    principals: Sequence[Principal] = (),
    project_id: str = "default",
    cmk_limit: int = 1000,
    maintenance_interval: float = 10.0,
) -> Iterator[KMSServer]:
    server = KMSServer(
        state_dir,
        principals=principals,
        project_id=project_id,
        cmk_limit=cmk_limit,
        maintenance_interval=maintenance_interval,
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()
