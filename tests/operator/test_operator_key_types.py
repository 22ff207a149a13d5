"""Asymmetric KMSKeys: created with their type, the public key in status, rotation refused by a condition.

The operator is a real subprocess; the KMSBackend reaches the kubekms server through its AWS wire
(provider aws), which has asymmetric keys. Signatures are made by the server through boto3.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from key_types_support import boto_kms
from operator_support import Cluster, operator_running

from kubekms.backend import KeyState
from kubekms.devenv.controlplane import ControlPlane
from kubekms.devenv.kmsserver import KMSServer
from kubekms.devenv.processes import ManagedProcess, wait_for

pytestmark = pytest.mark.e2e
NAMESPACE_PREFIX = "kt-"


@pytest.fixture(scope="module")
def operator(plane: ControlPlane, kms: KMSServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedProcess]:
    with operator_running(plane, tmp_path_factory.mktemp("operator"), [f"{NAMESPACE_PREFIX}*"]) as process:
        yield process


def test_an_rsa_signing_key_shows_its_public_key_and_refuses_rotation(
    cluster: Cluster, kms: KMSServer, operator: ManagedProcess
) -> None:
    backend = cluster.backend(kms, f"kt-{uuid.uuid4().hex[:8]}", provider="aws")
    cluster.create_key("signer", {"backendRef": {"name": backend}, "keySpec": "RSA_2048", "keyUsage": "SIGN_VERIFY"})
    status = cluster.wait_ready("signer")
    public_key = serialization.load_pem_public_key(status["publicKey"].encode())
    assert isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size == 2048

    message = b"signed by the kubekms server"
    signature = boto_kms(kms).sign(
        KeyId=status["keyId"], Message=message, MessageType="RAW", SigningAlgorithm="RSASSA_PSS_SHA_256"
    )["Signature"]
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
    public_key.verify(signature, message, pss, hashes.SHA256())
    with pytest.raises(InvalidSignature):
        public_key.verify(signature, message + b"!", pss, hashes.SHA256())

    cluster.patch_key("signer", {"metadata": {"annotations": {"kubekms.io/rotate": "now"}}})
    synced = wait_for(
        lambda: (c := cluster.condition("signer", "Synced")).get("reason") == "NotForKeyType" and c, 30, "refusal"
    )
    assert "only AES_256 keys rotate, not RSA_2048" in synced["message"]
    assert cluster.condition("signer", "Ready")["status"] == "True"  # the key itself is fine
    assert kms.call("describe_key", status["keyId"]).current_version == 1

    cluster.delete_key("signer")  # the refused annotation does not stand in the way of deletionPolicy Delete
    wait_for(
        lambda: kms.call("describe_key", status["keyId"]).state == KeyState.PENDING_DELETION, 30, "deletion scheduled"
    )
