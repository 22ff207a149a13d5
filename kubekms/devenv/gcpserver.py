"""A real ``kubekms server`` with its Cloud KMS gRPC listener on loopback, for tests and tools.

The devenv server launcher (principals, credentials, config), with two additions made before
it starts: ``gcp.listen`` in its config and a ``gcp_service_account`` (a fresh RSA key pair)
on every principal, whose service-account key JSON is ``gcp-keys/<principal>.json`` (mode 0600).
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kubekms.devenv.kmsserver import ADMIN, START_TIMEOUT, KMSServer, Principal
from kubekms.devenv.processes import free_port
from kubekms.private_files import write_private
from kubekms.providers import BackendConfig
from kubekms.server.gcp_auth import new_service_account_key


@dataclass
class GcpServer:
    server: KMSServer
    grpc_port: int
    rest_port: int
    keys_dir: Path

    @property
    def endpoint(self) -> str:
        """``host:port`` of the Cloud KMS gRPC API (plaintext)."""
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def rest_endpoint(self) -> str:
        """``http://host:port`` of the Cloud KMS REST mapping."""
        return f"http://127.0.0.1:{self.rest_port}"

    def key_file(self, principal: str = ADMIN) -> Path:
        """The service-account key JSON of ``principal``."""
        return self.keys_dir / f"{principal}.json"

    def service_account_info(self, principal: str = ADMIN) -> dict[str, str]:
        info: dict[str, str] = json.loads(self.key_file(principal).read_text())
        return info

    def backend_config(self, principal: str = ADMIN, *, project_id: str | None = None,
                       key_ring: str = "kubekms") -> BackendConfig:  # fmt: skip
        """Provider ``gcp`` on this server as ``principal``."""
        return BackendConfig(provider="gcp", endpoint=f"http://{self.endpoint}",
                             project_id=project_id or self.server.project_id, region="global",
                             credentials_file=self.key_file(principal), key_ring=key_ring)  # fmt: skip


def start_gcp_server(
    state_dir: Path, *, principals: Sequence[Principal] = (), project_id: str = "proj-gcp", **options: Any
) -> GcpServer:
    server = KMSServer(state_dir, principals=principals, project_id=project_id, **options)
    grpc_port, rest_port = free_port(), free_port()
    config_path = state_dir / "server.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["gcp"] = {"listen": f"127.0.0.1:{grpc_port}", "rest_listen": f"127.0.0.1:{rest_port}"}
    config_path.write_text(yaml.safe_dump(config))
    keys_dir = state_dir / "gcp-keys"
    keys_dir.mkdir(mode=0o700, exist_ok=True)
    principals_path = state_dir / "principals.yaml"
    entries = yaml.safe_load(principals_path.read_text())
    for entry in entries:
        email = f"{entry['name']}@{project_id}.iam.gserviceaccount.com"
        key_json, public_pem = new_service_account_key(email, project_id)
        write_private(keys_dir / f"{entry['name']}.json", json.dumps(key_json).encode())
        entry["gcp_service_account"] = {"client_email": email, "public_key": public_pem}
    write_private(principals_path, yaml.safe_dump(entries).encode())
    server.start()
    for port in (grpc_port, rest_port):  # /healthz may answer just before these listeners are up
        _wait_for_port(port, START_TIMEOUT)
    return GcpServer(server, grpc_port, rest_port, keys_dir)


def _wait_for_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@contextlib.contextmanager
def gcp_server(state_dir: Path, **kwargs: Any) -> Iterator[GcpServer]:
    running = start_gcp_server(state_dir, **kwargs)
    try:
        yield running
    finally:
        running.server.stop()
