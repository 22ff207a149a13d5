"""Encrypt and Decrypt with an RSA key refuse an EncryptionContext (ValidationException), as AWS does.

An RSA (OAEP) ciphertext binds no encryption context. The wire took one and ignored it, so a key policy
whose Decrypt statement holds a kms:EncryptionContext condition was met by whoever claimed the context in
the request: it restricted nothing, while the caller was told the context was in force.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator

import pytest
from aws_refusal_support import refused

from kubekms.devenv.kmsserver import KMSServer, Principal, kms_server

OAEP = "RSAES_OAEP_SHA_256"
BOB = "arn:aws:iam::default:user/bob"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    principals = (Principal("bob", actions=("describe-key", "decrypt-datakey"), keys=("own",)),)
    with kms_server(tmp_path_factory.mktemp("kms"), principals=principals, project_id="default") as running:
        yield running


def test_rsa_encrypt_and_decrypt_refuse_a_context(server: KMSServer) -> None:
    kms = server.aws_client(validate=False)
    key_id = kms.create_key(KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]["KeyId"]
    context = {"app": "a"}
    encrypt = functools.partial(kms.encrypt, KeyId=key_id, Plaintext=b"x", EncryptionAlgorithm=OAEP)
    assert refused(functools.partial(encrypt, EncryptionContext=context)) == "ValidationException"
    blob = encrypt()["CiphertextBlob"]
    decrypt = functools.partial(kms.decrypt, KeyId=key_id, CiphertextBlob=blob, EncryptionAlgorithm=OAEP)
    assert refused(functools.partial(decrypt, EncryptionContext=context)) == "ValidationException"
    assert decrypt()["Plaintext"] == b"x"
    assert decrypt(EncryptionContext={})["Plaintext"] == b"x"  # an empty context claims nothing


def test_a_policy_context_condition_cannot_be_met_by_claiming_it(server: KMSServer) -> None:
    admin, bob = server.aws_client(validate=False), server.aws_client("bob", validate=False)
    key_id = admin.create_key(KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]["KeyId"]
    policy = json.loads(admin.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
    policy["Statement"].append({
        "Effect": "Allow", "Principal": {"AWS": BOB}, "Action": "kms:Decrypt", "Resource": "*",
        "Condition": {"StringEquals": {"kms:EncryptionContext:app": "a"}},
    })  # fmt: skip
    admin.put_key_policy(KeyId=key_id, PolicyName="default", Policy=json.dumps(policy))
    blob = admin.encrypt(KeyId=key_id, Plaintext=b"secret", EncryptionAlgorithm=OAEP)["CiphertextBlob"]
    claimed = functools.partial(bob.decrypt, KeyId=key_id, CiphertextBlob=blob, EncryptionAlgorithm=OAEP,
                                EncryptionContext={"app": "a"})  # fmt: skip
    assert refused(claimed) in ("ValidationException", "AccessDeniedException")
    assert refused(functools.partial(bob.decrypt, KeyId=key_id, CiphertextBlob=blob, EncryptionAlgorithm=OAEP)) == (
        "AccessDeniedException"
    )
