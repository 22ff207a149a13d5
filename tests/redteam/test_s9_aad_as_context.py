"""A v1.0 text AAD that is, byte for byte, an encryption context's canonical form opens what that context sealed,
while key policies see no context: a Deny conditioned on the context does not apply.

``encryption_context {"tenant": "secret"}`` seals the AAD ``{"tenant":"secret"}`` (sorted, compact JSON), and
``additional_authenticated_data`` is sealed as its UTF-8 bytes: the same AAD. A principal a key policy denies
kms:Decrypt when ``kms:EncryptionContext:tenant`` is ``secret`` sent the context as that text and opened the
ciphertext (AWS: without the context no one opens it, so such a Deny holds). Real server, signed raw requests."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from s9_support import aws_call, v1_call

from kubekms.devenv.kmsserver import KMSServer, Principal, kms_server

PROJECT = "default"  # the AWS wire's account for the admin (PutKeyPolicy)
READER = Principal("reader", actions=("decrypt-data", "decrypt-datakey", "re-encrypt"), keys=("s9a-own",),
                   projects=(PROJECT,))  # fmt: skip
SECRET = {"tenant": "secret"}
AS_TEXT = json.dumps(SECRET, sort_keys=True, separators=(",", ":"))


def _policy() -> str:
    root, reader = "arn:aws:iam::default:root", "arn:aws:iam::default:user/reader"
    return json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": root}, "Action": "kms:*", "Resource": "*"},
        {"Effect": "Allow", "Principal": {"AWS": reader}, "Action": ["kms:Decrypt", "kms:ReEncrypt*"], "Resource": "*"},
        {"Effect": "Deny", "Principal": {"AWS": reader}, "Action": ["kms:Decrypt", "kms:ReEncrypt*"], "Resource": "*",
         "Condition": {"StringEquals": {"kms:EncryptionContext:tenant": "secret"}}},
    ]})  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    with kms_server(tmp_path_factory.mktemp("s9a"), project_id=PROJECT, principals=(READER,)) as running:
        yield running


@pytest.fixture(scope="module")
def sealed(server: KMSServer) -> str:
    status, made = v1_call(server, "admin", "POST", f"/v1.0/{PROJECT}/kms/create-key", {"key_alias": "s9a-key"})
    assert status == 200, made
    key_id = made["key_info"]["key_id"]
    status, answer = aws_call(server, "admin", "PutKeyPolicy", {"KeyId": key_id, "PolicyName": "default",
                                                                "Policy": _policy()})  # fmt: skip
    assert status == 200, answer
    body = {"key_id": key_id, "plain_text": "the secret tenant's", "encryption_context": SECRET}
    status, answer = v1_call(server, "admin", "POST", f"/v1.0/{PROJECT}/kms/encrypt-data", body)
    assert status == 200, answer
    return str(answer["cipher_text"])


def test_the_deny_holds_for_the_context(server: KMSServer, sealed: str) -> None:
    """The baseline: sent as a context, the Deny applies."""
    status, answer = v1_call(server, READER.name, "POST", f"/v1.0/{PROJECT}/kms/decrypt-data",
                             {"cipher_text": sealed, "encryption_context": SECRET})  # fmt: skip
    assert status == 403, answer


def test_the_deny_holds_for_the_context_sent_as_aad_text(server: KMSServer, sealed: str) -> None:
    status, answer = v1_call(server, READER.name, "POST", f"/v1.0/{PROJECT}/kms/decrypt-data",
                             {"cipher_text": sealed, "additional_authenticated_data": AS_TEXT})  # fmt: skip
    assert status != 200, answer


def test_the_deny_holds_for_re_encrypt_with_the_context_as_source_aad(server: KMSServer, sealed: str) -> None:
    status, made = v1_call(server, "admin", "POST", f"/v1.0/{PROJECT}/kms/create-key", {"key_alias": "s9a-own"})
    assert status == 200, made
    body = {"cipher_text": sealed, "source_additional_authenticated_data": AS_TEXT, "destination_key_id": "s9a-own"}
    status, answer = v1_call(server, READER.name, "POST", f"/v1.0/{PROJECT}/kms/re-encrypt", body)
    assert status != 200, answer
