"""Throw-away PKI for a local control plane: a CA, a serving cert, an admin client cert.

For a node beside it: the apiserver's client cert for kubelets, and per node a kubelet
client cert (``system:node:<name>``) and a kubelet serving cert for the node's address.

kube-apiserver needs TLS and an authenticated admin; generating them in-process with
``cryptography`` keeps the harness free of openssl/cfssl and of files from elsewhere.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kubekms.private_files import write_private

_VALIDITY = datetime.timedelta(days=30)


@dataclass(frozen=True)
class PkiFiles:
    ca_cert: Path
    serving_cert: Path
    serving_key: Path
    admin_cert: Path
    admin_key: Path
    service_account_key: Path
    service_account_pub: Path
    ca_key: Path
    kubelet_client_cert: Path
    kubelet_client_key: Path


@dataclass(frozen=True)
class NodeCerts:
    """A kubelet's identity towards the apiserver and its own serving certificate."""

    client_cert: Path
    client_key: Path
    serving_cert: Path
    serving_key: Path


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attributes)


def _issue(
    subject: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool = False,
    usages: list[x509.ObjectIdentifier] | None = None,
    sans: list[x509.GeneralName] | None = None,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _client(
    common_name: str, organization: str, issuer: x509.Name, issuer_key: ec.EllipticCurvePrivateKey
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A fresh key and a client certificate for user ``common_name`` in group ``organization``."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _issue(
        _name(common_name, organization), key.public_key(), issuer, issuer_key, usages=[ExtendedKeyUsageOID.CLIENT_AUTH]
    )
    return cert, key


def _write_pair(cert_path: Path, key_path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> None:
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    write_private(key_path, _key_pem(key))


def generate_pki(directory: Path) -> PkiFiles:
    """Write a fresh CA, apiserver serving cert, admin (system:masters) cert and SA key pair."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("kubekms-dev-ca")
    ca_cert = _issue(ca_name, ca_key.public_key(), ca_name, ca_key, ca=True)

    serving_key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.DNSName("kubernetes.default.svc"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("10.0.0.1")),
    ]
    serving_cert = _issue(
        _name("kube-apiserver"),
        serving_key.public_key(),
        ca_name,
        ca_key,
        usages=[ExtendedKeyUsageOID.SERVER_AUTH],
        sans=sans,
    )
    admin_cert, admin_key = _client("kubekms-admin", "system:masters", ca_name, ca_key)
    sa_key = ec.generate_private_key(ec.SECP256R1())
    # kube-apiserver's identity towards kubelets (logs, exec): full rights on the kubelet API
    kubelet_client_cert, kubelet_client_key = _client(
        "kube-apiserver-kubelet-client", "system:masters", ca_name, ca_key
    )

    files = PkiFiles(
        ca_cert=directory / "ca.crt",
        serving_cert=directory / "apiserver.crt",
        serving_key=directory / "apiserver.key",
        admin_cert=directory / "admin.crt",
        admin_key=directory / "admin.key",
        service_account_key=directory / "sa.key",
        service_account_pub=directory / "sa.pub",
        ca_key=directory / "ca.key",
        kubelet_client_cert=directory / "apiserver-kubelet-client.crt",
        kubelet_client_key=directory / "apiserver-kubelet-client.key",
    )
    _write_pair(files.ca_cert, files.ca_key, ca_cert, ca_key)
    _write_pair(files.kubelet_client_cert, files.kubelet_client_key, kubelet_client_cert, kubelet_client_key)
    _write_pair(files.serving_cert, files.serving_key, serving_cert, serving_key)
    _write_pair(files.admin_cert, files.admin_key, admin_cert, admin_key)
    write_private(files.service_account_key, _key_pem(sa_key))
    files.service_account_pub.write_bytes(
        sa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return files


def issue_node_certs(pki: PkiFiles, directory: Path, node_name: str, node_ip: str) -> NodeCerts:
    """Sign a kubelet client cert (``system:node:<node_name>`` in ``system:nodes``) and serving cert."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise TypeError(f"{pki.ca_key} is not the EC key generate_pki writes")
    certs = NodeCerts(
        client_cert=directory / "kubelet-client.crt",
        client_key=directory / "kubelet-client.key",
        serving_cert=directory / "kubelet.crt",
        serving_key=directory / "kubelet.key",
    )
    client_cert, client_key = _client(f"system:node:{node_name}", "system:nodes", ca_cert.subject, ca_key)
    serving_key = ec.generate_private_key(ec.SECP256R1())
    serving_cert = _issue(
        _name(node_name),
        serving_key.public_key(),
        ca_cert.subject,
        ca_key,
        usages=[ExtendedKeyUsageOID.SERVER_AUTH],
        sans=[x509.DNSName(node_name), x509.IPAddress(ipaddress.ip_address(node_ip))],
    )
    _write_pair(certs.client_cert, certs.client_key, client_cert, client_key)
    _write_pair(certs.serving_cert, certs.serving_key, serving_cert, serving_key)
    return certs
