"""Asymmetric keys through boto3 against a real kubekms server: Sign, Verify, GetPublicKey, RSA-OAEP, key pairs.

Signatures and ciphertexts are checked with ``cryptography`` alone, from GetPublicKey's answer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from aws_key_types_support import refusal
from aws_policy_support import boto_kms
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from kubekms.devenv.kmsserver import KMSServer, kms_server

MESSAGE = b"release v1.2.3, built from 8c41e0a"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    with kms_server(tmp_path_factory.mktemp("kms-asymmetric"), project_id="default") as running:
        yield running


@pytest.fixture(scope="module")
def kms(server: KMSServer) -> Any:
    return boto_kms(server)


def _key(kms: Any, spec: str, usage: str) -> str:
    return str(kms.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]["KeyId"])


def _public_key(kms: Any, key_id: str) -> Any:
    return serialization.load_der_public_key(kms.get_public_key(KeyId=key_id)["PublicKey"])


@pytest.mark.parametrize(
    ("spec", "algorithm", "curve", "hash_type"),
    [
        ("ECC_NIST_P256", "ECDSA_SHA_256", ec.SECP256R1, hashes.SHA256),
        ("ECC_NIST_P384", "ECDSA_SHA_384", ec.SECP384R1, hashes.SHA384),
        ("ECC_SECG_P256K1", "ECDSA_SHA_256", ec.SECP256K1, hashes.SHA256),
    ],
)
def test_an_ecdsa_signature_verifies_with_cryptography_from_get_public_key(
    kms: Any, spec: str, algorithm: str, curve: type[ec.EllipticCurve], hash_type: type[hashes.HashAlgorithm]
) -> None:
    key_id = _key(kms, spec, "SIGN_VERIFY")
    metadata = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert (metadata["KeySpec"], metadata["KeyUsage"], metadata["SigningAlgorithms"]) == (
        spec,
        "SIGN_VERIFY",
        [algorithm],
    )
    assert "EncryptionAlgorithms" not in metadata
    signature = kms.sign(KeyId=key_id, Message=MESSAGE, SigningAlgorithm=algorithm)["Signature"]
    public = _public_key(kms, key_id)
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert isinstance(public.curve, curve)
    public.verify(signature, MESSAGE, ec.ECDSA(hash_type()))  # raises if the signature were wrong
    answer = kms.verify(KeyId=key_id, Message=MESSAGE, Signature=signature, SigningAlgorithm=algorithm)
    assert answer["SignatureValid"] is True


def test_rsa_signatures_raw_and_digest_and_a_tampered_one_fails_verify(kms: Any) -> None:
    key_id = _key(kms, "RSA_2048", "SIGN_VERIFY")
    public = _public_key(kms, key_id)
    assert isinstance(public, rsa.RSAPublicKey)
    assert public.key_size == 2048
    digest = hashlib.sha384(MESSAGE).digest()
    pss = kms.sign(KeyId=key_id, Message=digest, MessageType="DIGEST", SigningAlgorithm="RSASSA_PSS_SHA_384")
    public.verify(pss["Signature"], MESSAGE, padding.PSS(padding.MGF1(hashes.SHA384()), 48), hashes.SHA384())
    pkcs1 = kms.sign(KeyId=key_id, Message=MESSAGE, SigningAlgorithm="RSASSA_PKCS1_V1_5_SHA_256")["Signature"]
    public.verify(pkcs1, MESSAGE, padding.PKCS1v15(), hashes.SHA256())
    tampered = bytes([pkcs1[0] ^ 1]) + pkcs1[1:]
    verify = kms.verify
    base = {"KeyId": key_id, "Message": MESSAGE, "SigningAlgorithm": "RSASSA_PKCS1_V1_5_SHA_256"}
    assert refusal(verify, **base, Signature=tampered) == "KMSInvalidSignatureException"
    assert refusal(verify, **{**base, "Message": MESSAGE + b"!"}, Signature=pkcs1) == "KMSInvalidSignatureException"
    assert verify(**base, Signature=pkcs1)["SignatureValid"] is True


def test_rsa_oaep_encrypt_decrypt_and_cryptography_encrypts_for_the_key(kms: Any) -> None:
    key_id = _key(kms, "RSA_3072", "ENCRYPT_DECRYPT")
    metadata = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert metadata["EncryptionAlgorithms"] == ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"db password", EncryptionAlgorithm="RSAES_OAEP_SHA_256")
    assert blob["EncryptionAlgorithm"] == "RSAES_OAEP_SHA_256"
    opened = kms.decrypt(KeyId=key_id, CiphertextBlob=blob["CiphertextBlob"], EncryptionAlgorithm="RSAES_OAEP_SHA_256")
    assert opened["Plaintext"] == b"db password"
    public = _public_key(kms, key_id)  # a client encrypts offline with the public key, the server decrypts
    oaep = padding.OAEP(padding.MGF1(hashes.SHA1()), hashes.SHA1(), None)  # AWS's RSAES_OAEP_SHA_1
    offline = public.encrypt(b"offline", oaep)
    assert kms.decrypt(KeyId=key_id, CiphertextBlob=offline, EncryptionAlgorithm="RSAES_OAEP_SHA_1")["Plaintext"] == (
        b"offline"
    )
    decrypt = kms.decrypt
    assert refusal(decrypt, KeyId=key_id, CiphertextBlob=offline, EncryptionAlgorithm="RSAES_OAEP_SHA_256") == (
        "InvalidCiphertextException"
    )
    too_long = b"x" * (384 - 2 * 32 - 1)  # one byte over OAEP-SHA-256's bound for a 3072-bit key
    encrypt = kms.encrypt
    assert refusal(encrypt, KeyId=key_id, Plaintext=too_long, EncryptionAlgorithm="RSAES_OAEP_SHA_256") == (
        "ValidationException"
    )


def test_each_key_type_refuses_the_others_operations(kms: Any) -> None:
    signing = _key(kms, "ECC_NIST_P256", "SIGN_VERIFY")
    encrypting = _key(kms, "RSA_2048", "ENCRYPT_DECRYPT")
    symmetric = str(kms.create_key()["KeyMetadata"]["KeyId"])
    usage = "InvalidKeyUsageException"
    assert refusal(kms.generate_data_key, KeyId=signing, KeySpec="AES_256") == usage
    assert refusal(kms.encrypt, KeyId=encrypting, Plaintext=b"m") == usage  # SYMMETRIC_DEFAULT on an RSA key
    assert refusal(kms.sign, KeyId=encrypting, Message=b"m", SigningAlgorithm="RSASSA_PSS_SHA_256") == usage
    assert refusal(kms.sign, KeyId=signing, Message=b"m", SigningAlgorithm="ECDSA_SHA_384") == usage
    assert refusal(kms.sign, KeyId=symmetric, Message=b"m", SigningAlgorithm="ECDSA_SHA_256") == usage
    assert refusal(kms.encrypt, KeyId=symmetric, Plaintext=b"m", EncryptionAlgorithm="RSAES_OAEP_SHA_1") == usage
    assert refusal(kms.get_public_key, KeyId=symmetric) == "UnsupportedOperationException"
    assert refusal(kms.enable_key_rotation, KeyId=signing) == "UnsupportedOperationException"
    assert refusal(kms.rotate_key_on_demand, KeyId=encrypting) == "UnsupportedOperationException"
    assert refusal(kms.create_key, KeySpec="ECC_NIST_P256", KeyUsage="ENCRYPT_DECRYPT") == usage
    assert refusal(kms.create_key, KeySpec="ECC_NIST_P999") == "ValidationException"
    digest = {"KeyId": signing, "MessageType": "DIGEST", "SigningAlgorithm": "ECDSA_SHA_256"}
    assert refusal(kms.sign, **digest, Message=b"short") == usage  # a DIGEST is the hash's length


def test_a_disabled_asymmetric_key_neither_signs_nor_shows_its_public_key(kms: Any) -> None:
    key_id = _key(kms, "ECC_NIST_P256", "SIGN_VERIFY")
    kms.disable_key(KeyId=key_id)
    assert refusal(kms.sign, KeyId=key_id, Message=b"m", SigningAlgorithm="ECDSA_SHA_256") == "DisabledException"
    assert refusal(kms.get_public_key, KeyId=key_id) == "DisabledException"


def test_a_data_key_pair_private_key_decrypts_under_its_symmetric_key_and_matches_the_public_key(kms: Any) -> None:
    wrapping = str(kms.create_key()["KeyMetadata"]["KeyId"])
    context = {"service": "signer"}
    pair = kms.generate_data_key_pair(KeyId=wrapping, KeyPairSpec="ECC_NIST_P256", EncryptionContext=context)
    assert pair["KeyPairSpec"] == "ECC_NIST_P256" and pair["KeyId"].endswith(wrapping)
    unwrapped = kms.decrypt(CiphertextBlob=pair["PrivateKeyCiphertextBlob"], EncryptionContext=context)["Plaintext"]
    assert unwrapped == pair["PrivateKeyPlaintext"]
    private = serialization.load_der_private_key(unwrapped, password=None)  # PKCS #8 DER, as AWS
    assert isinstance(private, ec.EllipticCurvePrivateKey)
    public = serialization.load_der_public_key(pair["PublicKey"])
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(private.sign(MESSAGE, ec.ECDSA(hashes.SHA256())), MESSAGE, ec.ECDSA(hashes.SHA256()))
    bare = kms.generate_data_key_pair_without_plaintext(KeyId=wrapping, KeyPairSpec="RSA_2048")
    assert "PrivateKeyPlaintext" not in bare
    rsa_private = kms.decrypt(CiphertextBlob=bare["PrivateKeyCiphertextBlob"])["Plaintext"]
    loaded = serialization.load_der_private_key(rsa_private, password=None)
    assert isinstance(loaded, rsa.RSAPrivateKey)
    assert (
        loaded.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        == bare["PublicKey"]
    )
    signing = _key(kms, "ECC_NIST_P256", "SIGN_VERIFY")
    usage = "InvalidKeyUsageException"
    assert refusal(kms.generate_data_key_pair, KeyId=signing, KeyPairSpec="RSA_2048") == usage
    assert refusal(kms.generate_data_key_pair, KeyId=wrapping, KeyPairSpec="RSA_1024") == "ValidationException"
