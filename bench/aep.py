"""aws-encryption-provider (AEP) for the plugin bench, pointed at a kubekms server's AWS wire.

AEP (github.com/kubernetes-sigs/aws-encryption-provider) is not in the Go module proxy: build
it from its source and name the binary in ``AEP_BIN``, e.g.::

    git clone https://github.com/kubernetes-sigs/aws-encryption-provider && cd aws-encryption-provider
    go build -o ~/.cache/kubekms/bin/aep ./cmd/server
    AEP_BIN=~/.cache/kubekms/bin/aep python bench/plugin_bench.py

It serves the same ``v2.KeyManagementService`` as our plugin, calling the KMS's Encrypt on every
Encrypt and its Decrypt on every Decrypt (no cache); here with the admin principal's key pair,
a key created on our server's AWS wire, and that wire as ``--kms-endpoint``.
"""

from __future__ import annotations

import contextlib
import os
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3

from kubekms.devenv.kmsserver import KMSServer
from kubekms.devenv.processes import ManagedProcess, free_port
from kubekms.providers import Credentials

REGION = "us-east-1"
START_TIMEOUT = 30.0


def aep_binary() -> Path | None:
    """``AEP_BIN`` when set (and an executable file), else None."""
    value = os.environ.get("AEP_BIN")
    if not value:
        return None
    path = Path(value).expanduser()
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise SystemExit(f"AEP_BIN={value} is not an executable file")
    return path


SKIPPED = "aws-encryption-provider: skipped (set AEP_BIN to its binary, built from its source: see bench/aep.py)"


def aws_key(server: KMSServer) -> tuple[str, Credentials]:
    """A new symmetric key on the server's AWS wire (its ARN) and the admin key pair that uses it."""
    credentials = Credentials.from_file(server.credentials_file("admin"))
    kms = boto3.client(
        "kms",
        endpoint_url=server.endpoint,
        region_name=REGION,
        aws_access_key_id=credentials.access_key,
        aws_secret_access_key=credentials.secret_key,
    )
    arn: str = kms.create_key(Description="aws-encryption-provider bench")["KeyMetadata"]["Arn"]
    return arn, credentials


@dataclass
class AepProcess:
    binary: Path
    server: KMSServer
    workdir: Path
    name: str = "aep"

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.socket = self.workdir / f"{self.name}.sock"
        self.health_port = free_port()
        self.key, credentials = aws_key(self.server)
        self._env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": credentials.access_key,
            "AWS_SECRET_ACCESS_KEY": credentials.secret_key,
            "AWS_EC2_METADATA_DISABLED": "true",  # no instance-metadata probe for a region or credentials
        }
        self._process: ManagedProcess | None = None

    @property
    def endpoint(self) -> str:
        return f"unix://{self.socket}"

    @property
    def pid(self) -> int:
        assert self._process is not None and self._process.process is not None, "not started"
        return self._process.process.pid

    def healthy(self) -> bool:
        url = f"http://127.0.0.1:{self.health_port}/healthz"
        with urllib.request.urlopen(url, timeout=5) as answer:
            return bool(answer.status == 200)

    def start(self) -> None:
        self.socket.unlink(missing_ok=True)
        argv = [
            str(self.binary),
            f"--listen={self.socket}",
            f"--key={self.key}",
            f"--region={REGION}",
            f"--kms-endpoint={self.server.endpoint}",
            f"--health-port=127.0.0.1:{self.health_port}",
            "--health-kms-version=v2",
        ]
        self._process = ManagedProcess(self.name, argv, self.workdir / f"{self.name}.log", env=self._env)
        self._process.start()
        self._process.wait_until(self.healthy, START_TIMEOUT, "healthy (/healthz: a KMS Encrypt and Decrypt)")

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()


@contextlib.contextmanager
def aep_process(server: KMSServer, workdir: Path, name: str = "aep") -> Iterator[AepProcess | None]:
    """A running AEP on ``server``'s AWS wire, or None without AEP_BIN (the caller prints :data:`SKIPPED`)."""
    binary = aep_binary()
    if binary is None:
        yield None
        return
    process = AepProcess(binary, server, workdir, name)
    process.start()
    try:
        yield process
    finally:
        process.stop()
