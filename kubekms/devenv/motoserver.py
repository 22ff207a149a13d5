"""Launcher of moto's AWS server (``moto[server]``) as a separate process on a free loopback port.

A reference for the AWS KMS wire in tests and benchmarks: the same boto3 calls go to moto
and to the kubekms server's AWS endpoint. moto accepts any credentials and does not
enforce every AWS state rule (e.g. it encrypts with a disabled key).
"""

from __future__ import annotations

import contextlib
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kubekms.devenv.processes import ManagedProcess, free_port

START_TIMEOUT = 60.0
REGION = "us-east-1"


@dataclass(frozen=True)
class MotoServer:
    endpoint: str
    pid: int
    region: str = REGION
    # moto takes any key pair; these are not secrets
    access_key: str = "AKIDMOTOTEST"
    secret_key: str = "moto-test-secret"


def _answers(endpoint: str) -> bool:
    with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2) as answer:  # noqa: S310 (our loopback URL)
        return bool(answer.status == 200)


@contextlib.contextmanager
def moto_server(log_path: Path) -> Iterator[MotoServer]:
    port = free_port()
    argv = [sys.executable, "-c", "from moto.server import main; main()", "-H", "127.0.0.1", "-p", str(port)]
    process = ManagedProcess("moto-server", argv, log_path)
    process.start()
    endpoint = f"http://127.0.0.1:{port}"
    try:
        process.wait_until(lambda: _answers(endpoint), START_TIMEOUT, "serving /moto-api/")
        assert process.process is not None
        yield MotoServer(endpoint=endpoint, pid=process.process.pid)
    finally:
        process.stop()
