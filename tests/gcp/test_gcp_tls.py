"""The Cloud KMS API over TLS: the stock gRPC transport with the server's CA, and provider gcp over https."""

from __future__ import annotations

import functools
import json
import socket
import time
from pathlib import Path

import grpc
import yaml
from google.cloud import kms_v1
from google.cloud.kms_v1.services.key_management_service.transports import KeyManagementServiceGrpcTransport
from google.oauth2 import service_account

from kubekms.devenv.pki import generate_pki
from kubekms.devenv.processes import ManagedProcess, free_port, kubekms_argv, log_tail
from kubekms.providers import BackendConfig, open_backend
from kubekms.server.gcp_auth import new_service_account_key

EMAIL = "tls@proj-tls.iam.gserviceaccount.com"


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


async def test_official_client_and_provider_over_tls(tmp_path: Path) -> None:
    pki = generate_pki(tmp_path / "pki")
    key_json, public_pem = new_service_account_key(EMAIL, "proj-tls")
    key_file = tmp_path / "sa.json"
    key_file.write_text(json.dumps(key_json))
    principals = tmp_path / "principals.yaml"
    account = {"client_email": EMAIL, "public_key": public_pem}
    admin = {"name": "admin", "access_key": "AKTLS", "secret_key": "sk-tls", "gcp_service_account": account}
    principals.write_text(yaml.safe_dump([admin]))
    principals.chmod(0o600)
    grpc_port = free_port()
    config = tmp_path / "server.yaml"
    config.write_text(yaml.safe_dump({
        "listen": f"127.0.0.1:{free_port()}", "state_dir": "state", "principals_file": "principals.yaml",
        "tls_cert": str(pki.serving_cert), "tls_key": str(pki.serving_key), "gcp": {"listen": f"127.0.0.1:{grpc_port}"},
    }))  # fmt: skip
    process = ManagedProcess("kubekms-server", [*kubekms_argv("server", "--config", str(config)), "--init"],
                             tmp_path / "server.log")  # fmt: skip
    process.start()
    try:
        process.wait_until(lambda: "Cloud KMS gRPC API listening" in log_tail(process.log_path), 60, "listening")
        process.wait_until(lambda: _listening(grpc_port), 60, "accepting gRPC connections")
        client = kms_v1.KeyManagementServiceClient(
            credentials=service_account.Credentials.from_service_account_info(key_json),
            client_options={"api_endpoint": f"127.0.0.1:{grpc_port}"},
            transport=functools.partial(KeyManagementServiceGrpcTransport,
                                        ssl_channel_credentials=grpc.ssl_channel_credentials(pki.ca_cert.read_bytes())),
        )  # fmt: skip
        ring = client.create_key_ring(request={"parent": "projects/proj-tls/locations/global", "key_ring_id": "tls"})
        key = client.create_crypto_key(request={"parent": ring.name, "crypto_key_id": "k", "crypto_key": {
            "purpose": kms_v1.CryptoKey.CryptoKeyPurpose.ENCRYPT_DECRYPT}})  # fmt: skip
        sealed = client.encrypt(request={"name": key.name, "plaintext": b"over tls"}).ciphertext
        assert client.decrypt(request={"name": key.name, "ciphertext": sealed}).plaintext == b"over tls"

        backend = await open_backend(BackendConfig(provider="gcp", endpoint=f"https://127.0.0.1:{grpc_port}",
                                                   project_id="proj-tls", credentials_file=key_file,
                                                   ca_file=pki.ca_cert, key_ring="tls"))  # fmt: skip
        try:
            assert await backend.decrypt_data_key("k", sealed) == b"over tls"
            data_key = await backend.create_data_key("k", aad=b"ctx")
            assert await backend.decrypt_data_key("k", data_key.ciphertext, aad=b"ctx") == data_key.plaintext
        finally:
            await backend.close()
        started = time.monotonic()
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as plain:  # plaintext to a TLS port: no answer
            try:
                grpc.channel_ready_future(plain).result(timeout=2)
                connected = True
            except grpc.FutureTimeoutError:
                connected = False
        assert not connected and time.monotonic() - started < 10
    finally:
        process.stop()
    events = [json.loads(line) for line in process.log_path.read_text().splitlines() if line.startswith("{")]
    assert any(e["message"] == "Cloud KMS gRPC API listening" and e["tls"] is True for e in events)
