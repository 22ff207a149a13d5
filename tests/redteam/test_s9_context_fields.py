"""A grant's (or key policy's) encryption-context condition is checked on the context the call really uses.

The pipeline read the context for grants and key policy conditions from the first of ``EncryptionContext``,
``SourceEncryptionContext`` or ``encryption_context`` in the body, whatever the wire and operation; the operation
itself reads its own field (v1.0: ``additional_authenticated_data``, else ``encryption_context``; AWS ReEncrypt:
``SourceEncryptionContext``). A grantee limited to tenant ``a``'s ciphertexts sent ``a``'s context in a field the
operation ignores and ``b``'s in the one it uses, and opened ``b``'s ciphertext. Real server, real boto3, raw
signed v1.0 and AWS requests (no SDK sends the extra field). The v1.0 wire now refuses such a body (KMS.0208);
the AWS wire's cases are routed (S9-H1-4)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from s9_support import aws_call, v1_call

from kubekms.devenv.kmsserver import KMSServer, Principal, kms_server
from kubekms.wire.v1.grants import principal_arn

PROJECT = "default"  # the AWS wire's account for the admin (every project) and the grantee
GRANTEE = Principal("tenant-a", actions=("decrypt-data", "decrypt-datakey", "re-encrypt", "encrypt-data"),
                    keys=("s9c-own",), projects=(PROJECT,))  # fmt: skip
A, B = {"tenant": "a"}, {"tenant": "b"}
SECRET = "tenant b's secret"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    with kms_server(tmp_path_factory.mktemp("s9c"), project_id=PROJECT, principals=(GRANTEE,)) as running:
        yield running


@pytest.fixture(scope="module")
def key_id(server: KMSServer) -> str:
    """A key whose only way in for the grantee is a grant bound to tenant a's context."""
    status, made = v1_call(server, "admin", "POST", f"/v1.0/{PROJECT}/kms/create-key", {"key_alias": "s9c-key"})
    assert status == 200, made
    key: str = made["key_info"]["key_id"]
    server.aws_client().create_grant(KeyId=key, GranteePrincipal=principal_arn(PROJECT, GRANTEE.name),
                     Operations=["Decrypt", "ReEncryptFrom", "ReEncryptTo", "Encrypt"],
                     Constraints={"EncryptionContextEquals": A})  # fmt: skip
    return key


@pytest.fixture(scope="module")
def own_key(server: KMSServer) -> str:
    """The grantee's own key (its key list names it): where it re-encrypts to."""
    status, made = v1_call(server, "admin", "POST", f"/v1.0/{PROJECT}/kms/create-key", {"key_alias": "s9c-own"})
    assert status == 200, made
    return str(made["key_info"]["key_id"])


def _v1_sealed(server: KMSServer, key_id: str, context: dict[str, str]) -> str:
    status, sealed = v1_call(server, "admin", "POST", f"/v1.0/{PROJECT}/kms/encrypt-data",
                             {"key_id": key_id, "plain_text": SECRET, "encryption_context": context})  # fmt: skip
    assert status == 200, sealed
    return str(sealed["cipher_text"])


def _opened(status: int, answer: Any) -> bool:
    return status == 200 or SECRET in str(answer)


def test_the_grant_opens_tenant_as_own_ciphertext(server: KMSServer, key_id: str) -> None:
    """The baseline: the grant works for what it is meant for (else the refusals below would prove nothing)."""
    status, answer = v1_call(server, GRANTEE.name, "POST", f"/v1.0/{PROJECT}/kms/decrypt-data",
                             {"cipher_text": _v1_sealed(server, key_id, A), "encryption_context": A})  # fmt: skip
    assert (status, answer.get("plain_text")) == (200, SECRET)
    status, _ = v1_call(server, GRANTEE.name, "POST", f"/v1.0/{PROJECT}/kms/decrypt-data",
                        {"cipher_text": _v1_sealed(server, key_id, B), "encryption_context": B})  # fmt: skip
    assert status == 403


@pytest.mark.parametrize(
    "fields",
    [
        {"EncryptionContext": A, "encryption_context": B},  # a field the v1.0 wire ignores
        {"encryption_context": A, "additional_authenticated_data": '{"tenant":"b"}'},  # the AAD wins over it
    ],
    ids=["aws-field-name", "aad-over-context"],
)
def test_v1_decrypt_data_checks_the_context_it_opens_with(
    server: KMSServer, key_id: str, fields: dict[str, Any]
) -> None:
    body = {"cipher_text": _v1_sealed(server, key_id, B), **fields}
    status, answer = v1_call(server, GRANTEE.name, "POST", f"/v1.0/{PROJECT}/kms/decrypt-data", body)
    assert not _opened(status, answer), answer
    assert (status, answer["error"]["error_code"]) == (400, "KMS.0208"), answer


def test_v1_re_encrypt_is_not_authorised_on_a_context_it_does_not_use(
    server: KMSServer, key_id: str, own_key: str
) -> None:
    """v1.0 re-encrypt opens with source_additional_authenticated_data and never reads encryption_context: tenant
    a's context there passed the ReEncryptFrom constraint, and b's ciphertext came out under the grantee's own key."""
    body = {"cipher_text": _v1_sealed(server, key_id, B), "encryption_context": A,
            "source_additional_authenticated_data": '{"tenant":"b"}', "destination_key_id": "s9c-own"}  # fmt: skip
    status, answer = v1_call(server, GRANTEE.name, "POST", f"/v1.0/{PROJECT}/kms/re-encrypt", body)
    assert (status, answer["error"]["error_code"]) == (400, "KMS.0208"), answer


@pytest.mark.parametrize(
    ("target", "fields"),
    [
        ("Decrypt", {"SourceEncryptionContext": A}),  # not a Decrypt field: Decrypt opens with no context
        ("Decrypt", {"encryption_context": A}),  # the v1.0 wire's name, ignored here
        ("ReEncrypt", {"EncryptionContext": A, "DestinationKeyId": "alias/s9c-own"}),  # ReEncrypt opens with Source...
    ],
    ids=["decrypt-source-field", "decrypt-v1-field", "re-encrypt-plain-field"],
)
def test_aws_operations_check_the_context_they_open_with(
    server: KMSServer, key_id: str, own_key: str, target: str, fields: dict[str, Any]
) -> None:
    """A ciphertext sealed without a context is not tenant a's: the grant bound to a's context must not open it."""
    blob = base64.b64encode(server.aws_client().encrypt(KeyId=key_id, Plaintext=SECRET.encode())["CiphertextBlob"])
    status, answer = aws_call(server, GRANTEE.name, target, {"CiphertextBlob": blob.decode(), **fields})
    assert status != 200, answer
