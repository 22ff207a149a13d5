"""CreateGrant refuses an encryption context constraint on an asymmetric or HMAC key (ValidationException).

AWS: "Grants for asymmetric KMS keys cannot include an encryption context grant constraint";
operations with those keys take no encryption context. Here an RSA key's Decrypt took an
EncryptionContext it bound to nothing, so a Decrypt grant "only for context app=a" let its
grantee decrypt every ciphertext of the key by claiming app=a: the constraint restricted nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from aws_refusal_support import refused

from kubekms.devenv.kmsserver import KMSServer, Principal, kms_server

BOB = "arn:aws:iam::default:user/bob"
KEYS = {
    "rsa": ({"KeySpec": "RSA_2048", "KeyUsage": "ENCRYPT_DECRYPT"}, ["Decrypt", "Encrypt"]),
    "ecc": ({"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"}, ["Sign", "Verify"]),
    "hmac": ({"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"}, ["GenerateMac"]),
}
CONSTRAINTS = ({"EncryptionContextSubset": {"app": "a"}}, {"EncryptionContextEquals": {"app": "a"}})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    principals = (Principal("bob", actions=("describe-key",), keys=("own",)),)
    with kms_server(tmp_path_factory.mktemp("kms"), principals=principals, project_id="default") as running:
        yield running


@pytest.mark.parametrize("kind", sorted(KEYS))
@pytest.mark.parametrize("constraints", CONSTRAINTS)
def test_no_context_constraint_on_a_key_without_context(server: KMSServer, kind: str, constraints: Any) -> None:
    admin = server.aws_client(validate=False)
    spec, operations = KEYS[kind]
    key_id = admin.create_key(**spec)["KeyMetadata"]["KeyId"]
    grant = lambda: admin.create_grant(  # noqa: E731
        KeyId=key_id, GranteePrincipal=BOB, Operations=operations, Constraints=constraints
    )
    assert refused(grant) == "ValidationException"
    assert admin.list_grants(KeyId=key_id)["Grants"] == []  # the refused call made no grant
    assert admin.create_grant(KeyId=key_id, GranteePrincipal=BOB, Operations=operations)["GrantId"]


def test_a_symmetric_key_keeps_its_context_constraints(server: KMSServer) -> None:
    admin = server.aws_client(validate=False)
    key_id = admin.create_key()["KeyMetadata"]["KeyId"]
    for constraints in CONSTRAINTS:
        assert admin.create_grant(KeyId=key_id, GranteePrincipal=BOB, Operations=["Decrypt"], Constraints=constraints)
    assert len(admin.list_grants(KeyId=key_id)["Grants"]) == 2


def test_an_rsa_decrypt_grant_cannot_be_scoped_by_a_claimed_context(server: KMSServer) -> None:
    """The hole itself: with the constraint refused, bob holds no Decrypt on the RSA key to claim a context for."""
    admin, bob = server.aws_client(validate=False), server.aws_client("bob", validate=False)
    key_id = admin.create_key(KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]["KeyId"]
    secret = admin.encrypt(KeyId=key_id, Plaintext=b"secret", EncryptionAlgorithm="RSAES_OAEP_SHA_256")
    scoped = {"EncryptionContextEquals": {"app": "a"}}
    assert refused(lambda: admin.create_grant(KeyId=key_id, GranteePrincipal=BOB, Operations=["Decrypt"],
                                              Constraints=scoped)) == "ValidationException"  # fmt: skip
    decrypt = lambda: bob.decrypt(  # noqa: E731
        KeyId=key_id, CiphertextBlob=secret["CiphertextBlob"], EncryptionAlgorithm="RSAES_OAEP_SHA_256",
        EncryptionContext={"app": "a"},
    )  # fmt: skip
    assert refused(decrypt) == "AccessDeniedException"
