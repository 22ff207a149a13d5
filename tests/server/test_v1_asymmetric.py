"""The real Huawei SDK against our server's v1.0 wire: asymmetric keys (sign, verify, get-publickey) and HMAC keys.

Signatures are checked twice: by the server's verify and by ``cryptography`` alone from the PEM public key.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from huaweicloudsdkkms.v2 import (
    CreateKeyRequest,
    CreateKeyRequestBody,
    GenerateMacRequest,
    GenerateMacRequestBody,
    KmsClient,
    ListKeyDetailRequest,
    OperateKeyRequestBody,
    ShowPublicKeyRequest,
    SignRequest,
    SignRequestBody,
    ValidateSignatureRequest,
    VerifyMacRequest,
    VerifyMacRequestBody,
    VerifyRequestBody,
)
from test_sdk_lifecycle import expect_error

from kubekms.wire.v1.answers import key_metadata_from_wire

KeyMaker = Callable[[str], str]
MESSAGE = b"the release manifest, v1.2.3"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def create_key(client: KmsClient, alias: str, key_spec: str, key_usage: str | None = None) -> str:
    body = CreateKeyRequestBody(key_alias=alias, key_spec=key_spec, key_usage=key_usage)
    return client.create_key(CreateKeyRequest(body=body)).key_info.key_id


def sign(client: KmsClient, key_id: str, message: str, algorithm: str, message_type: str | None = None) -> bytes:
    body = SignRequestBody(key_id=key_id, message=message, signing_algorithm=algorithm, message_type=message_type)
    answer = client.sign(SignRequest(body=body))
    assert answer.key_id and answer.key_id in (key_id, describe_id(client, key_id))
    return base64.b64decode(answer.signature)


def describe_id(client: KmsClient, key_ref: str) -> str:
    return str(client.list_key_detail(ListKeyDetailRequest(body=OperateKeyRequestBody(key_id=key_ref))).key_info.key_id)


def verify(client: KmsClient, key_id: str, message: str, signature: bytes, algorithm: str, message_type: str) -> str:
    body = VerifyRequestBody(key_id=key_id, message=message, signature=b64(signature), signing_algorithm=algorithm,
                             message_type=message_type)  # fmt: skip
    return str(client.validate_signature(ValidateSignatureRequest(body=body)).signature_valid)


def public_key(client: KmsClient, key_ref: str) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
    pem = client.show_public_key(ShowPublicKeyRequest(body=OperateKeyRequestBody(key_id=key_ref))).public_key
    loaded = serialization.load_pem_public_key(pem.encode())
    assert isinstance(loaded, rsa.RSAPublicKey | ec.EllipticCurvePublicKey)
    return loaded


def tampered(signature: bytes) -> bytes:
    return signature[:-1] + bytes([signature[-1] ^ 1])


@pytest.mark.parametrize(
    ("huawei_spec", "keystore_spec", "algorithm"),
    [("RSA_2048", "RSA_2048", "RSASSA_PSS_SHA_256"), ("EC_P256", "ECC_NIST_P256", "ECDSA_SHA_256"),
     ("EC_P384", "ECC_NIST_P384", "ECDSA_SHA_384"), ("SECP256K1", "ECC_SECG_P256K1", "ECDSA_SHA_256")],
)  # fmt: skip
def test_sign_verify_and_public_key(
    client: KmsClient, unique: KeyMaker, huawei_spec: str, keystore_spec: str, algorithm: str
) -> None:
    alias = unique("signing")
    key_id = create_key(client, alias, huawei_spec)  # no key_usage: Huawei's default for asymmetric keys
    info = client.list_key_detail(ListKeyDetailRequest(body=OperateKeyRequestBody(key_id=key_id))).key_info
    assert (info.key_spec, info.key_usage) == (huawei_spec, "SIGN_VERIFY")
    assert key_metadata_from_wire(info.to_dict()).key_spec == keystore_spec  # what the REST providers decode

    chosen = hashes.SHA384() if algorithm.endswith("384") else hashes.SHA256()
    digest = hashlib.new(chosen.name, MESSAGE).digest()
    by_digest = sign(client, alias, b64(digest), algorithm)  # message_type DIGEST is Huawei's default
    by_raw = sign(client, key_id, b64(MESSAGE), algorithm, "RAW")

    public = public_key(client, alias)
    for signature in (by_digest, by_raw):
        assert verify(client, key_id, b64(MESSAGE), signature, algorithm, "RAW") == "true"
        assert verify(client, alias, b64(digest), signature, algorithm, "DIGEST") == "true"
        assert verify(client, key_id, b64(MESSAGE), tampered(signature), algorithm, "RAW") == "false"
        assert verify(client, key_id, b64(MESSAGE + b"!"), signature, algorithm, "RAW") == "false"
        if isinstance(public, rsa.RSAPublicKey):  # raises InvalidSignature if wrong
            pss = padding.PSS(mgf=padding.MGF1(chosen), salt_length=padding.PSS.DIGEST_LENGTH)
            public.verify(signature, MESSAGE, pss, chosen)
        else:
            public.verify(signature, MESSAGE, ec.ECDSA(chosen))


def test_rsa_pkcs1_and_refusals(client: KmsClient, unique: KeyMaker) -> None:
    key_id = create_key(client, unique("rsa"), "RSA_3072", "SIGN_VERIFY")
    signature = sign(client, key_id, b64(MESSAGE), "RSASSA_PKCS1_V1_5_SHA_512", "RAW")
    public = public_key(client, key_id)
    assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 3072
    public.verify(signature, MESSAGE, padding.PKCS1v15(), hashes.SHA512())

    # an algorithm the key does not answer to, a DIGEST of the wrong length, a message_type unknown, bad base64
    expect_error(lambda: sign(client, key_id, b64(MESSAGE), "ECDSA_SHA_256", "RAW"), 400, "KMS.0332")
    expect_error(lambda: sign(client, key_id, b64(MESSAGE), "RSASSA_PSS_SHA_256"), 400, "KMS.0332")
    expect_error(lambda: sign(client, key_id, b64(MESSAGE), "RSASSA_PSS_SHA_256", "TEXT"), 400, "KMS.0308")
    expect_error(lambda: sign(client, key_id, "not base64!", "RSASSA_PSS_SHA_256", "RAW"), 400, "KMS.0308")
    expect_error(lambda: sign(client, key_id, b64(bytes(4097)), "RSASSA_PSS_SHA_256", "RAW"), 400, "KMS.0308")

    symmetric = create_key(client, unique("aes"), "AES_256")  # no public key, no signing
    expect_error(lambda: public_key(client, symmetric), 400, "KMS.0325")
    expect_error(lambda: sign(client, symmetric, b64(MESSAGE), "RSASSA_PSS_SHA_256", "RAW"), 400, "KMS.0332")


def test_create_key_specs_huawei_does_not_offer_here(client: KmsClient, unique: KeyMaker) -> None:
    for spec in ("SM2", "ED25519", "SM4", "HMAC_SM3"):
        error = expect_error(functools.partial(create_key, client, unique("unoffered"), spec), 400, "KMS.0308")
        assert "EC_P256" in error.error_msg  # the message names what is offered, in Huawei's names
    expect_error(lambda: create_key(client, unique("ecc-encrypt"), "EC_P256", "ENCRYPT_DECRYPT"), 400, "KMS.0332")
    # AWS's names for the curves are not Huawei's: refused here as Huawei refuses them
    for spec in ("ECC_NIST_P256", "ECC_NIST_P384", "ECC_SECG_P256K1"):
        error = expect_error(functools.partial(create_key, client, unique("aws-name"), spec), 400, "KMS.0308")
        assert "EC_P256" in error.error_msg
    long_spec = "RSA_" + "9" * 5000  # refused without being echoed back
    error = expect_error(functools.partial(create_key, client, unique("long-spec"), long_spec), 400, "KMS.0308")
    assert len(error.error_msg) < 300 and "9" * 64 not in error.error_msg


def test_hmac_generate_and_verify_mac(client: KmsClient, unique: KeyMaker) -> None:
    key_id = create_key(client, unique("hmac"), "HMAC_256")
    info = client.list_key_detail(ListKeyDetailRequest(body=OperateKeyRequestBody(key_id=key_id))).key_info
    assert (info.key_spec, info.key_usage) == ("HMAC_256", "GENERATE_VERIFY_MAC")
    body = GenerateMacRequestBody(key_id=key_id, mac_algorithm="HMAC_SHA_256", message=b64(MESSAGE))
    mac = base64.b64decode(client.generate_mac(GenerateMacRequest(body=body)).mac)
    assert len(mac) == 32

    def check(message: bytes, candidate: bytes) -> bool:
        body = VerifyMacRequestBody(key_id=key_id, mac_algorithm="HMAC_SHA_256", message=b64(message),
                                    mac=b64(candidate))  # fmt: skip
        return bool(client.verify_mac(VerifyMacRequest(body=body)).mac_valid)

    assert check(MESSAGE, mac)
    assert not check(MESSAGE, tampered(mac))
    assert not check(MESSAGE + b"!", mac)
    wrong = GenerateMacRequestBody(key_id=key_id, mac_algorithm="HMAC_SHA_512", message=b64(MESSAGE))
    expect_error(lambda: client.generate_mac(GenerateMacRequest(body=wrong)), 400, "KMS.0332")
