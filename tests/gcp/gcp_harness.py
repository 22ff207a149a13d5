"""A real ``kubekms server`` with its Cloud KMS gRPC listener, and the official google-cloud-kms client on it.

The server is the devenv launcher's (principals, credentials, config) with two additions made
before it starts: ``gcp.listen`` in its config and a ``gcp_service_account`` (a fresh RSA key
pair) on every principal. Clients are ``KeyManagementServiceClient`` with service-account
credentials (self-signed JWTs, no token endpoint) and ``client_options.api_endpoint``; the only
thing not stock is the channel: plaintext on loopback (gRPC local credentials, which carry call
credentials without TLS).
"""

from __future__ import annotations

import functools
import json
import os
import socket
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import yaml
from google.cloud import kms_v1
from google.cloud.kms_v1.services.key_management_service.transports import KeyManagementServiceGrpcTransport
from google.oauth2 import service_account

from kubekms.devenv.kmsserver import START_TIMEOUT, KMSServer, Principal
from kubekms.devenv.processes import free_port
from kubekms.server.gcp_auth import new_service_account_key


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


@dataclass
class GcpServer:
    server: KMSServer
    grpc_port: int
    keys_dir: Path

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def service_account_info(self, principal: str) -> dict[str, str]:
        info: dict[str, str] = json.loads((self.keys_dir / f"{principal}.json").read_text())
        return info

    def credentials(self, principal: str = "admin") -> service_account.Credentials:
        return service_account.Credentials.from_service_account_info(self.service_account_info(principal))

    def client(self, principal: str = "admin", credentials: Any = None) -> kms_v1.KeyManagementServiceClient:
        return kms_client(self.endpoint, credentials or self.credentials(principal))


def loopback_channel(host: str, **kwargs: Any) -> grpc.Channel:
    """The transport's own create_channel (auth plugin, default host for the JWT audience), without TLS."""
    kwargs["ssl_credentials"] = grpc.local_channel_credentials()
    return KeyManagementServiceGrpcTransport.create_channel(host, **kwargs)


def kms_client(endpoint: str, credentials: Any) -> kms_v1.KeyManagementServiceClient:
    return kms_v1.KeyManagementServiceClient(
        credentials=credentials,
        client_options={"api_endpoint": endpoint},
        transport=functools.partial(KeyManagementServiceGrpcTransport, channel=loopback_channel),
    )


def start_gcp_server(
    state_dir: Path, *, principals: Sequence[Principal] = (), project_id: str = "proj-gcp", **options: Any
) -> GcpServer:
    server = KMSServer(state_dir, principals=principals, project_id=project_id, **options)
    grpc_port = free_port()
    config_path = state_dir / "server.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["gcp"] = {"listen": f"127.0.0.1:{grpc_port}"}
    config_path.write_text(yaml.safe_dump(config))
    keys_dir = state_dir / "gcp-keys"
    keys_dir.mkdir(mode=0o700, exist_ok=True)
    principals_path = state_dir / "principals.yaml"
    entries = yaml.safe_load(principals_path.read_text())
    for entry in entries:
        email = f"{entry['name']}@{project_id}.iam.gserviceaccount.com"
        key_json, public_pem = new_service_account_key(email, project_id)
        _write_private(keys_dir / f"{entry['name']}.json", json.dumps(key_json))
        entry["gcp_service_account"] = {"client_email": email, "public_key": public_pem}
    _write_private(principals_path, yaml.safe_dump(entries))
    server.start()
    _wait_for_port(grpc_port, START_TIMEOUT)  # /healthz may answer just before the gRPC listener is up
    return GcpServer(server, grpc_port, keys_dir)


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


def running_gcp_server(state_dir: Path, **kwargs: Any) -> Iterator[GcpServer]:
    running = start_gcp_server(state_dir, **kwargs)
    try:
        yield running
    finally:
        running.server.stop()
