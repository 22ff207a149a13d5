"""The official Cloud KMS clients of Go and Node.js, unchanged, against the server's Cloud KMS wire.

Each client is configured as a user would (README "Google Cloud KMS"): the endpoint, Application Default
Credentials from a service-account key file (self-signed JWTs; Go's REST client asks the key file's token_uri,
the server's ``/token``, for access tokens), and the server's CA
as the process's trust (Go: SSL_CERT_FILE; Node: NODE_EXTRA_CA_CERTS for HTTPS, GRPC_DEFAULT_SSL_ROOTS_FILE_PATH
for grpc-js). Go's and Node's gRPC clients send the JWT only over TLS, so the server here has the dev PKI's
serving certificate. Programs: tests/sdks/gcp/go (cloud.google.com/go/kms/apiv1, gRPC and REST), tests/sdks/gcp/node
(@google-cloud/kms over gRPC, and over its REST fallback ``fallback: true``) and tests/sdks/gcp/java
(com.google.cloud:google-cloud-kms over gRPC and over HTTP/JSON); each prints one JSON line per step.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import toolchains
import yaml

from kubekms.devenv.pki import generate_pki
from kubekms.devenv.processes import ManagedProcess, free_port, kubekms_argv, log_tail, wait_for
from kubekms.private_files import write_private
from kubekms.server.gcp_auth import new_service_account_key

pytestmark = pytest.mark.sdks

PROGRAMS = Path(__file__).parent / "gcp"
PROJECT = "proj-sdk"
LOCATION = f"projects/{PROJECT}/locations/global"
READER_ACTIONS = ("describe-key", "list-keys")
RUN_SECONDS = 180.0


@dataclass(frozen=True)
class TlsGcpServer:
    grpc_port: int
    rest_port: int
    ca_file: Path
    keys_dir: Path

    def client_env(self, ring: str) -> dict[str, str]:
        """What every program reads: admin's key file as ADC, the reader's key file, where to make its key ring."""
        return {"GOOGLE_APPLICATION_CREDENTIALS": str(self.keys_dir / "admin.json"),
                "KMS_READER_CREDENTIALS": str(self.keys_dir / "reader.json"),
                "KMS_LOCATION": LOCATION, "KMS_RING": ring}  # fmt: skip


def _accepting(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


@contextlib.contextmanager
def tls_gcp_server(directory: Path) -> Iterator[TlsGcpServer]:
    """The server with gRPC and REST Cloud KMS listeners over TLS; principals admin (all) and reader."""
    pki = generate_pki(directory / "pki")
    keys_dir = directory / "gcp-keys"
    keys_dir.mkdir(mode=0o700)
    grpc_port, rest_port = free_port(), free_port()
    token_uri = f"https://127.0.0.1:{rest_port}/token"
    entries = []
    for name, actions in (("admin", ("*",)), ("reader", READER_ACTIONS)):
        key_json, public_pem = new_service_account_key(f"{name}@{PROJECT}.iam.gserviceaccount.com", PROJECT)
        key_json["quota_project_id"] = PROJECT  # the clients then send x-goog-user-project too
        key_json["token_uri"] = token_uri  # clients that fetch access tokens (Go's REST client) ask the server
        write_private(keys_dir / f"{name}.json", json.dumps(key_json).encode())
        account = {"client_email": key_json["client_email"], "public_key": public_pem}
        entries.append({"name": name, "access_key": "AK" + secrets.token_hex(8).upper(),
                        "secret_key": secrets.token_hex(16), "actions": list(actions), "keys": ["*"],
                        "projects": [PROJECT], "gcp_service_account": account})  # fmt: skip
    write_private(directory / "principals.yaml", yaml.safe_dump(entries).encode())
    config = {
        "listen": f"127.0.0.1:{free_port()}", "state_dir": str(directory / "state"), "workers": 1,
        "principals_file": str(directory / "principals.yaml"), "audit_log": str(directory / "audit.log"),
        "tls_cert": str(pki.serving_cert), "tls_key": str(pki.serving_key),
        "gcp": {"listen": f"127.0.0.1:{grpc_port}", "rest_listen": f"127.0.0.1:{rest_port}", "token_uri": token_uri},
    }  # fmt: skip
    (directory / "server.yaml").write_text(yaml.safe_dump(config))
    log_path = directory / "server.log"
    argv = [*kubekms_argv("server", "--config", str(directory / "server.yaml")), "--init"]
    process = ManagedProcess("kubekms-server", argv, log_path)
    process.start()
    try:
        process.wait_until(lambda: "Cloud KMS REST API listening" in log_tail(log_path, 200), 60, "listening")
        wait_for(lambda: _accepting(grpc_port) and _accepting(rest_port), 30, "Cloud KMS ports accepting")
        yield TlsGcpServer(grpc_port, rest_port, pki.ca_cert, keys_dir)
    finally:
        process.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsGcpServer]:
    with tls_gcp_server(tmp_path_factory.mktemp("gcp-sdks")) as running:
        yield running


def _code(name: str) -> str:
    """Go's code names (InvalidArgument) as google.rpc's (INVALID_ARGUMENT); Node's are those already."""
    return name if name.isupper() else re.sub(r"(?<!^)(?=[A-Z])", "_", name).upper()


def _steps(lines: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    steps = {line["step"]: {**line, "code": _code(line["code"])} for line in lines}
    assert len(steps) == len(lines), "a step printed twice"
    return steps


def _check_scenario(steps: dict[str, dict[str, Any]], ring: str, *, code_from_http_status: bool = False) -> None:
    """What every client must see, whatever its language and transport.

    ``code_from_http_status``: the REST transports of Go (gax-go apierror) and Java (gax-httpjson) make their
    error's code from the HTTP status alone, so FAILED_PRECONDITION (HTTP 400, as on Google) reaches them as
    INVALID_ARGUMENT, with the server's message."""

    def ok(step: str) -> dict[str, Any]:
        assert steps[step]["code"] == "OK", steps[step]
        return steps[step]

    def refused(step: str, code: str, *words: str) -> None:
        assert steps[step]["code"] == code and all(w in steps[step]["message"] for w in words), steps[step]

    key = f"{LOCATION}/keyRings/{ring}/cryptoKeys/sym"
    assert ok("CreateKeyRing")["name"] == f"{LOCATION}/keyRings/{ring}"
    created = ok("CreateCryptoKey")
    assert (created["name"], created["purpose"], created["state"]) == (key, "ENCRYPT_DECRYPT", "ENABLED")
    assert created["primary"] == f"{key}/cryptoKeyVersions/1" and created["labels"] == {"team": "payments"}
    assert created["destroy_days"] == 30
    assert ok("CreateCryptoKey.sign")["purpose"] == "ASYMMETRIC_SIGN" and ok("CreateCryptoKey.mac")["purpose"] == "MAC"
    public_key = ok("GetPublicKey")
    assert public_key["algorithm"] == "EC_SIGN_P256_SHA256" and public_key["pem_crc32c_ok"]
    signed = ok("AsymmetricSign")  # verified by the client's language's own ECDSA with the PEM
    assert signed["verified"] is True and signed["verified_digest_crc32c"] and signed["signature_crc32c_ok"]
    opened = ok("AsymmetricDecrypt")  # sealed by the client's language's own RSA-OAEP with the public key
    assert opened["plaintext"] == "pay 100 to alice" and opened["verified_ciphertext_crc32c"]
    assert opened["plaintext_crc32c_ok"]
    tag = ok("MacSign")
    assert tag["length"] == 32 and tag["verified_data_crc32c"] and tag["mac_crc32c_ok"]
    checked = ok("MacVerify")
    assert (checked["success"], checked["verified_mac_crc32c"], checked["tampered_success"]) == (True, True, False)
    got = ok("GetCryptoKey")
    assert (got["algorithm"], got["protection_level"]) == ("GOOGLE_SYMMETRIC_ENCRYPTION", "SOFTWARE")
    listed = ok("ListCryptoKeys")
    everything = ["decrypt", "mac", "more-0", "more-1", "more-2", "more-3", "sign", "sym"]
    assert (listed["names"], listed["total_size"], listed["pages"]) == (everything, 8, 4)
    assert listed.get("auto", everything) == everything
    encrypted = ok("Encrypt")
    assert encrypted["name"] == f"{key}/cryptoKeyVersions/1" and encrypted["protection_level"] == "SOFTWARE"
    assert encrypted["verified_plaintext_crc32c"] and encrypted["verified_aad_crc32c"]
    assert encrypted["ciphertext_crc32c_ok"]
    decrypted = ok("Decrypt")
    assert decrypted["plaintext"] == "attack at dawn" and decrypted["used_primary"] and decrypted["plaintext_crc32c_ok"]
    refused("Decrypt.wrong_aad", "INVALID_ARGUMENT", "Decryption failed")
    refused("Encrypt.bad_crc32c", "INVALID_ARGUMENT", "plaintext_crc32c")
    assert ok("Encrypt.gzip" if "Encrypt.gzip" in steps else "Encrypt.large")["round_trip"] is True
    assert ok("CreateCryptoKeyVersion")["name"] == f"{key}/cryptoKeyVersions/2"
    assert ok("CreateCryptoKeyVersion")["state"] == "ENABLED"
    assert ok("UpdateCryptoKeyPrimaryVersion")["primary"] == f"{key}/cryptoKeyVersions/2"
    updated = ok("UpdateCryptoKey")
    assert updated["labels"] == {"team": "risk", "env": "prod"} and updated["rotation_period_s"] == 30 * 86400
    assert updated["next_rotation_time"] == updated["expected_next"]
    refused("UpdateCryptoKey.bad_mask", "INVALID_ARGUMENT", "purpose")
    assert ok("UpdateCryptoKeyVersion")["state"] == "DISABLED"
    if code_from_http_status:
        refused("Decrypt.disabled", "INVALID_ARGUMENT", "is not enabled", "DISABLED")
    else:
        refused("Decrypt.disabled", "FAILED_PRECONDITION", "DISABLED")
    destroyed = ok("DestroyCryptoKeyVersion")
    assert destroyed["state"] == "DESTROY_SCHEDULED" and 29.9 < destroyed["destroy_in_days"] <= 30
    assert ok("RestoreCryptoKeyVersion")["state"] == "DISABLED"
    assert ok("ListCryptoKeyVersions")["versions"] == ["1=DISABLED", "2=ENABLED"]
    random = ok("GenerateRandomBytes")
    assert random["length"] == 32 and random["crc32c_ok"]
    refused("GetCryptoKey.absent", "NOT_FOUND", "absent")
    refused("CreateCryptoKey.bad_id", "INVALID_ARGUMENT", "crypto_key_id")
    assert ok("reader.GetCryptoKey")["name"] == key
    refused("reader.Encrypt", "PERMISSION_DENIED", "encrypt-datakey")


@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_the_official_go_client(server: TlsGcpServer, transport: str) -> None:
    binary = toolchains.go_binary(PROGRAMS / "go")
    port = server.grpc_port if transport == "grpc" else server.rest_port
    env = {**server.client_env(f"go-{transport}"), "KMS_TRANSPORT": transport, "KMS_ENDPOINT": f"127.0.0.1:{port}",
           "SSL_CERT_FILE": str(server.ca_file)}  # fmt: skip
    lines = toolchains.run_json_lines([str(binary)], env, timeout=RUN_SECONDS)
    _check_scenario(_steps(lines), f"go-{transport}", code_from_http_status=transport == "rest")


@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_the_official_node_client(server: TlsGcpServer, transport: str) -> None:
    modules = toolchains.node_modules(PROGRAMS / "node")
    port = server.grpc_port if transport == "grpc" else server.rest_port
    env = {**server.client_env(f"node-{transport}"), "NODE_PATH": str(modules), "KMS_TRANSPORT": transport,
           "KMS_HOST": "127.0.0.1", "KMS_PORT": str(port), "NODE_EXTRA_CA_CERTS": str(server.ca_file),
           "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": str(server.ca_file)}  # fmt: skip
    lines = toolchains.run_json_lines(["node", str(PROGRAMS / "node" / "main.js")], env, timeout=RUN_SECONDS)
    _check_scenario(_steps(lines), f"node-{transport}")


@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_the_official_java_client(server: TlsGcpServer, transport: str) -> None:
    java = shutil.which("java")
    if java is None:
        pytest.skip("`java` is not installed")
    classpath = toolchains.java_classpath(PROGRAMS / "java")
    port = server.grpc_port if transport == "grpc" else server.rest_port
    env = {**server.client_env(f"java-{transport}"), "KMS_TRANSPORT": transport, "KMS_HOST": "127.0.0.1",
           "KMS_PORT": str(port), "KMS_CA_FILE": str(server.ca_file)}  # fmt: skip
    lines = toolchains.run_json_lines([java, "-cp", classpath, str(PROGRAMS / "java" / "Scenario.java")], env,
                                      timeout=RUN_SECONDS)  # fmt: skip
    _check_scenario(_steps(lines), f"java-{transport}", code_from_http_status=transport == "rest")
