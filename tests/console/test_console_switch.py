"""The console's config switch, and its cookies and headers when the server speaks TLS."""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml
from console_harness import credentials, start_server
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kubekms.devenv.kmsserver import KMSServer
from kubekms.devenv.processes import ManagedProcess, kubekms_argv


def test_a_switched_off_console_is_not_served(tmp_path: Path) -> None:
    server = start_server(tmp_path, enabled=False)
    try:
        answer = requests.get(f"{server.endpoint}/console/sign-in", timeout=10)
        assert answer.status_code == 400 and answer.json()["error"]["error_code"] == "KMS.0201"  # the wire's answer
    finally:
        server.stop()


def _self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + datetime.timedelta(1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_path, key_path = folder / "tls.crt", folder / "tls.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    return cert_path, key_path


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[KMSServer, str]]:
    """The launcher's config with tls_cert/tls_key added, started here (the launcher polls plain HTTP)."""
    server = KMSServer(tmp_path)
    cert_path, key_path = _self_signed(tmp_path)
    config_path = tmp_path / "server.yaml"
    config = yaml.safe_load(config_path.read_text())
    config_path.write_text(yaml.safe_dump({**config, "tls_cert": str(cert_path), "tls_key": str(key_path)}))
    process = ManagedProcess("kubekms-server-tls", [*kubekms_argv("server", "--config", str(config_path)), "--init"],
                             tmp_path / "server.log")  # fmt: skip
    endpoint = f"https://127.0.0.1:{server.port}"

    def healthy() -> bool:
        return requests.get(f"{endpoint}/healthz", verify=str(cert_path), timeout=2).status_code == 200

    process.start()
    try:
        process.wait_until(healthy, 30, "serving /healthz over TLS")
        yield server, str(cert_path)
    finally:
        process.stop()


def test_over_tls_the_session_cookie_is_secure_and_host_bound(tls_server: tuple[KMSServer, str]) -> None:
    server, ca = tls_server
    endpoint = f"https://127.0.0.1:{server.port}"
    client = requests.Session()
    page = client.get(f"{endpoint}/console/sign-in", verify=ca, timeout=10)
    assert page.headers["Strict-Transport-Security"].startswith("max-age=")
    token = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    access_key, secret_key = credentials(server, "admin")
    answer = client.post(f"{endpoint}/console/sign-in", allow_redirects=False, verify=ca, timeout=10,
                         data={"csrf": token, "access_key": access_key, "secret_key": secret_key})  # fmt: skip
    assert answer.status_code == 303
    cookie = next(c for c in answer.raw.headers.getlist("Set-Cookie") if c.startswith("__Host-kubekms-console="))
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert {"secure", "httponly", "samesite", "path", "max-age"} <= attributes and "domain" not in attributes
    assert "Path=/" in [part.strip() for part in cookie.split(";")]
    assert client.get(f"{endpoint}/console/projects", verify=ca, timeout=10, allow_redirects=False).status_code == 200
