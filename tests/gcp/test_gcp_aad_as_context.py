"""Cloud KMS Encrypt/Decrypt take raw AAD bytes; an AAD that is, byte for byte, an encryption context's canonical
form (sorted, compact JSON: what the other wires seal a context as) opens what that context sealed. Key policies
must see that context for it: a Deny conditioned on ``kms:EncryptionContext:tenant`` held on the v1.0 and AWS
wires and did not on this one (S9-H1-8, the Cloud KMS side). Real server, the official google-cloud-kms client."""

from __future__ import annotations

import json
from collections.abc import Iterator

import google.api_core.exceptions
import pytest
from gcp_harness import client, put_version_policy

from kubekms.devenv.gcpserver import GcpServer, gcp_server
from kubekms.devenv.kmsserver import Principal

PROJECT = "proj-aad-context"
KEY = f"projects/{PROJECT}/locations/global/keyRings/r/cryptoKeys/k"
READER = Principal("reader", projects=(PROJECT,))
OWNER = Principal("owner", projects=(PROJECT,))  # the AWS wire's account of a principal is its project
SECRET = {"tenant": "secret"}
AS_AAD = json.dumps(SECRET, sort_keys=True, separators=(",", ":")).encode()


@pytest.fixture(scope="module")
def gcp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcpServer]:
    with gcp_server(tmp_path_factory.mktemp("aad-context"), principals=(READER, OWNER), project_id=PROJECT) as running:
        admin = client(running, "admin")
        admin.create_key_ring(request={"parent": f"projects/{PROJECT}/locations/global", "key_ring_id": "r"})
        admin.create_crypto_key(request={"parent": f"projects/{PROJECT}/locations/global/keyRings/r",
                                         "crypto_key_id": "k", "crypto_key": {"purpose": 1}})  # fmt: skip
        reader = f"arn:aws:iam::{PROJECT}:user/reader"
        put_version_policy(running, PROJECT, "gcp/global/r/k/1", [
            {"Effect": "Allow", "Principal": {"AWS": reader}, "Action": "kms:*", "Resource": "*"},
            {"Effect": "Deny", "Principal": {"AWS": reader}, "Action": ["kms:Decrypt", "kms:Encrypt"],
             "Resource": "*", "Condition": {"StringEquals": {"kms:EncryptionContext:tenant": "secret"}}},
        ])  # fmt: skip
        yield running


def test_another_aad_is_allowed(gcp: GcpServer) -> None:
    """The baseline: the reader may use the key, with an AAD that is no context the policy names."""
    other = b'{"tenant":"other"}'
    reader = client(gcp, "reader")
    sealed = reader.encrypt(request={"name": KEY, "plaintext": b"x", "additional_authenticated_data": other})
    opened = reader.decrypt(
        request={"name": KEY, "ciphertext": sealed.ciphertext, "additional_authenticated_data": other}
    )
    assert opened.plaintext == b"x"


def test_the_deny_holds_for_the_context_sent_as_aad(gcp: GcpServer) -> None:
    sealed = client(gcp, "admin").encrypt(request={"name": KEY, "plaintext": b"the secret tenant's",
                                                   "additional_authenticated_data": AS_AAD})  # fmt: skip
    with pytest.raises(google.api_core.exceptions.PermissionDenied):
        client(gcp, "reader").decrypt(request={"name": KEY, "ciphertext": sealed.ciphertext,
                                               "additional_authenticated_data": AS_AAD})  # fmt: skip
    with pytest.raises(google.api_core.exceptions.PermissionDenied):
        client(gcp, "reader").encrypt(request={"name": KEY, "plaintext": b"y", "additional_authenticated_data": AS_AAD})
