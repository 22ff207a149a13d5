"""Grants for the asymmetric and HMAC operations, through boto3 against a real kubekms server.

``scoped`` may call every operation but on no key of its own (the principals file's key list): only a grant
lets it use a key.
"""

from __future__ import annotations

from collections.abc import Iterator

import botocore.exceptions
import pytest
from aws_policy_support import boto_kms, refused
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from test_aws_policies_grants import denied

from kubekms.devenv.kmsserver import KMSServer, Principal, kms_server

SCOPED_ARN = "arn:aws:iam::default:user/scoped"
MESSAGE = b"build 1234"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    principals = (Principal("scoped", keys=("none",)),)
    with kms_server(tmp_path_factory.mktemp("kms-grant-types"), principals=principals, project_id="default") as running:
        yield running


def test_a_sign_grant_lets_the_grantee_sign_and_nothing_else(server: KMSServer) -> None:
    admin, scoped = boto_kms(server), boto_kms(server, "scoped")
    key_id = admin.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    sign = {"KeyId": key_id, "Message": MESSAGE, "SigningAlgorithm": "ECDSA_SHA_256"}
    assert denied(scoped.sign, **sign)

    admin.create_grant(KeyId=key_id, GranteePrincipal=SCOPED_ARN, Operations=["Sign"])
    signature = scoped.sign(**sign)["Signature"]
    public = serialization.load_der_public_key(admin.get_public_key(KeyId=key_id)["PublicKey"])
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(signature, MESSAGE, ec.ECDSA(hashes.SHA256()))  # raises InvalidSignature if wrong

    assert denied(scoped.verify, Signature=signature, **sign)
    assert denied(scoped.get_public_key, KeyId=key_id)
    assert denied(scoped.describe_key, KeyId=key_id)
    assert denied(scoped.disable_key, KeyId=key_id)
    assert denied(scoped.create_grant, KeyId=key_id, GranteePrincipal=SCOPED_ARN, Operations=["Verify"])


def test_grants_for_every_key_type_operation(server: KMSServer) -> None:
    admin, scoped = boto_kms(server), boto_kms(server, "scoped")
    rsa = admin.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    hmac = admin.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]["KeyId"]
    aes = admin.create_key()["KeyMetadata"]["KeyId"]
    for key_id, operations in (
        (rsa, ["Verify", "GetPublicKey"]),
        (hmac, ["GenerateMac", "VerifyMac"]),
        (aes, ["GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext"]),
    ):
        assert denied(scoped.describe_key, KeyId=key_id)
        admin.create_grant(KeyId=key_id, GranteePrincipal=SCOPED_ARN, Operations=operations)

    signature = admin.sign(KeyId=rsa, Message=MESSAGE, SigningAlgorithm="RSASSA_PSS_SHA_256")["Signature"]
    verified = scoped.verify(KeyId=rsa, Message=MESSAGE, Signature=signature, SigningAlgorithm="RSASSA_PSS_SHA_256")
    assert verified["SignatureValid"] is True
    assert scoped.get_public_key(KeyId=rsa)["KeySpec"] == "RSA_2048"
    assert denied(scoped.sign, KeyId=rsa, Message=MESSAGE, SigningAlgorithm="RSASSA_PSS_SHA_256")

    mac = scoped.generate_mac(KeyId=hmac, Message=MESSAGE, MacAlgorithm="HMAC_SHA_256")["Mac"]
    assert scoped.verify_mac(KeyId=hmac, Message=MESSAGE, Mac=mac, MacAlgorithm="HMAC_SHA_256")["MacValid"] is True

    pair = scoped.generate_data_key_pair(KeyId=aes, KeyPairSpec="ECC_NIST_P256")
    assert pair["PrivateKeyPlaintext"] and pair["PublicKey"]
    bare = scoped.generate_data_key_pair_without_plaintext(KeyId=aes, KeyPairSpec="ECC_NIST_P256")
    assert "PrivateKeyPlaintext" not in bare
    assert denied(scoped.generate_data_key, KeyId=aes, KeySpec="AES_256")

    with pytest.raises(botocore.exceptions.ClientError) as raised:  # still an operation no grant may name
        admin.create_grant(KeyId=aes, GranteePrincipal=SCOPED_ARN, Operations=["DeriveSharedSecret"])
    assert refused(raised)[0] == "ValidationException"


def test_a_constraint_does_not_apply_to_describe_key(server: KMSServer) -> None:
    """AWS: a constrained grant's DescribeKey and RetireGrant are not held to its encryption context."""
    admin, scoped = boto_kms(server), boto_kms(server, "scoped")
    key_id = admin.create_key()["KeyMetadata"]["KeyId"]
    admin.create_grant(KeyId=key_id, GranteePrincipal=SCOPED_ARN, Operations=["Encrypt", "DescribeKey"],
                       Constraints={"EncryptionContextSubset": {"tenant": "blue"}})  # fmt: skip
    assert scoped.describe_key(KeyId=key_id)["KeyMetadata"]["KeyId"] == key_id
    assert scoped.encrypt(KeyId=key_id, Plaintext=b"x", EncryptionContext={"tenant": "blue"})["CiphertextBlob"]
    assert denied(scoped.encrypt, KeyId=key_id, Plaintext=b"x")
