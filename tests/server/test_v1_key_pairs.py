"""The real Huawei SDK against our server's v1.0 create-rsa-datakey-pair and create-ec-datakey-pair: the backend's
data key pairs (the AWS wire's GenerateDataKeyPair) in Huawei's fields, base64; the private key's ciphertext
opens with decrypt-data, bound to the same additional_authenticated_data."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from huaweicloudsdkkms.v2 import (
    CreateEcDatakeyPairRequest,
    CreateEcDatakeyPairRequestBody,
    CreateRsaDatakeyPairRequest,
    CreateRsaDatakeyPairRequestBody,
    DecryptDataRequest,
    DecryptDataRequestBody,
    KmsClient,
)
from test_sdk_lifecycle import create_key, expect_error

from kubekms.devenv.kmsserver import KMSServer, Principal, kms_server

KeyMaker = Callable[[str], str]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    principals = [Principal("rsa-pairs", actions=("create-rsa-datakey-pair",))]
    with kms_server(tmp_path_factory.mktemp("kms"), project_id="proj1", principals=principals) as running:
        yield running


def open_private(client: KmsClient, cipher_text: str, aad: str | None = None) -> bytes:
    body = DecryptDataRequestBody(cipher_text=cipher_text, additional_authenticated_data=aad)
    return base64.b64decode(client.decrypt_data(DecryptDataRequest(body=body)).plain_text_base64)


def rsa_pair(client: KmsClient, key_ref: str, spec: str, **extra: object):  # type: ignore[no-untyped-def]
    body = CreateRsaDatakeyPairRequestBody(key_id=key_ref, key_spec=spec, **extra)
    return client.create_rsa_datakey_pair(CreateRsaDatakeyPairRequest(body=body))


def ec_pair(client: KmsClient, key_ref: str, spec: str, **extra: object):  # type: ignore[no-untyped-def]
    body = CreateEcDatakeyPairRequestBody(key_id=key_ref, key_spec=spec, **extra)
    return client.create_ec_datakey_pair(CreateEcDatakeyPairRequest(body=body))


def test_rsa_pair_private_key_matches_its_public_key_and_opens_with_decrypt_data(
    client: KmsClient, unique: KeyMaker
) -> None:
    key_id = create_key(client, unique("pairs"))
    made = rsa_pair(client, key_id, "RSA_2048", additional_authenticated_data="app=a")
    assert (made.key_id, made.key_spec) == (key_id, "RSA_2048")
    private_der = base64.b64decode(made.private_key_plain_text)
    private = serialization.load_der_private_key(private_der, password=None)
    public = serialization.load_der_public_key(base64.b64decode(made.public_key))
    assert isinstance(private, rsa.RSAPrivateKey) and isinstance(public, rsa.RSAPublicKey)
    assert private.key_size == 2048
    assert private.public_key().public_numbers() == public.public_numbers()
    sealed = public.encrypt(b"m", padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None))
    assert private.decrypt(sealed, padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None)) == b"m"
    assert open_private(client, made.private_key_cipher_text, aad="app=a") == private_der
    expect_error(lambda: open_private(client, made.private_key_cipher_text, aad="app=b"), 400, "KMS.2201")


def test_ec_pair_without_plaintext_answers_only_the_ciphertext(client: KmsClient, unique: KeyMaker) -> None:
    key_id = create_key(client, unique("pairs-ec"))
    made = ec_pair(client, key_id, "ECC_NIST_P256", with_plain_text=False)
    assert made.private_key_plain_text is None and made.key_spec == "ECC_NIST_P256"
    private = serialization.load_der_private_key(open_private(client, made.private_key_cipher_text), password=None)
    public = serialization.load_der_public_key(base64.b64decode(made.public_key))
    assert isinstance(private, ec.EllipticCurvePrivateKey) and isinstance(public, ec.EllipticCurvePublicKey)
    assert private.curve.name == "secp256r1"
    assert private.public_key().public_numbers() == public.public_numbers()


def test_pair_specs_belong_to_their_operation(client: KmsClient, unique: KeyMaker) -> None:
    key_id = create_key(client, unique("pairs-specs"))
    expect_error(lambda: rsa_pair(client, key_id, "ECC_NIST_P256"), 400, "KMS.0308")
    expect_error(lambda: ec_pair(client, key_id, "RSA_2048"), 400, "KMS.0308")
    expect_error(lambda: ec_pair(client, key_id, "SM2"), 400, "KMS.0308")
    expect_error(lambda: ec_pair(client, key_id, "ECC_NIST_P256", pin="1234"), 400, "KMS.0308")
    expect_error(lambda: rsa_pair(client, "no-such-key", "RSA_2048"), 404, "KMS.0207")


def test_each_pair_operation_is_its_own_permission(
    server: KMSServer, client: KmsClient, sdk_client: Callable[..., KmsClient], unique: KeyMaker
) -> None:
    key_id = create_key(client, unique("pairs-perm"))
    limited = sdk_client(server, "rsa-pairs")
    assert rsa_pair(limited, key_id, "RSA_2048", with_plain_text=False).private_key_cipher_text
    expect_error(lambda: ec_pair(limited, key_id, "ECC_NIST_P256"), 403, "KMS.0307")
