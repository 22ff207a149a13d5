"""Encrypt and Decrypt sizes as Cloud KMS sets them (64 KiB of plaintext, 64 KiB of AAD, SOFTWARE keys), refused in
its words, over gRPC and REST; and the v1.0 wire's encrypt-data marker, which an AAD on this wire may not carry."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
import yaml
from botocore.config import Config
from botocore.exceptions import ClientError
from gcp_harness import client, credentials
from google.api_core import exceptions
from google.cloud import kms_v1
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkkms.v2 import EncryptDataRequest, EncryptDataRequestBody, KmsClient

from kubekms.devenv.gcpserver import GcpServer, gcp_server
from kubekms.devenv.kmsserver import Principal
from kubekms.server.v1_data_keys import DATA_AAD_MARKER

PROJECT = "proj-limits"
LOCATION = f"projects/{PROJECT}/locations/global"
KEY = f"{LOCATION}/keyRings/r/cryptoKeys/k"
# Cloud KMS's Encrypt and Decrypt on the key, not the v1.0 wire's encrypt-data / decrypt-data
DATA_KEYS = Principal("data-keys", actions=("encrypt-datakey", "decrypt-datakey"), keys=(KEY,), projects=(PROJECT,))
OWNER = Principal("owner", projects=(PROJECT,))  # everything, in this project only: the AWS and v1.0 wires' tenant
KIB64 = 65536


def _too_long(field: str, length: int) -> str:
    limit = 65827 if field == "ciphertext" else KIB64  # 64 KiB and our format's largest overhead
    return f"Request field {field} must have length of at least 0, but not more than {limit}. " + (
        f"Provided value had length {length}."
    )


@pytest.fixture(scope="module")
def gcp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcpServer]:
    with gcp_server(tmp_path_factory.mktemp("limits"), principals=(DATA_KEYS, OWNER), project_id=PROJECT) as running:
        admin = client(running)
        admin.create_key_ring(request={"parent": LOCATION, "key_ring_id": "r"})
        admin.create_crypto_key(request={"parent": f"{LOCATION}/keyRings/r", "crypto_key_id": "k", "crypto_key": {
            "purpose": kms_v1.CryptoKey.CryptoKeyPurpose.ENCRYPT_DECRYPT}})  # fmt: skip
        yield running


@pytest.fixture(scope="module")
def rest(gcp: GcpServer) -> kms_v1.KeyManagementServiceClient:
    return kms_v1.KeyManagementServiceClient(
        credentials=credentials(gcp), client_options={"api_endpoint": gcp.rest_endpoint}, transport="rest"
    )


@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_over_64_kib_of_plaintext_or_aad_is_refused_in_cloud_kms_words(
    gcp: GcpServer, rest: kms_v1.KeyManagementServiceClient, transport: str
) -> None:
    kms = client(gcp) if transport == "grpc" else rest
    with pytest.raises(exceptions.BadRequest) as refused:
        kms.encrypt(request={"name": KEY, "plaintext": b"p" * (KIB64 + 1)})
    assert refused.value.message.endswith(_too_long("plaintext", KIB64 + 1))
    with pytest.raises(exceptions.BadRequest) as refused:
        kms.encrypt(request={"name": KEY, "plaintext": b"p", "additional_authenticated_data": b"a" * (KIB64 + 1)})
    assert refused.value.message.endswith(_too_long("additional_authenticated_data", KIB64 + 1))
    with pytest.raises(exceptions.BadRequest) as refused:
        kms.decrypt(request={"name": KEY, "ciphertext": b"c" * 70000})
    assert refused.value.message.endswith(_too_long("ciphertext", 70000))


@pytest.mark.parametrize("transport", ["grpc", "rest"])
def test_64_kib_of_plaintext_and_64_kib_of_aad_round_trip(
    gcp: GcpServer, rest: kms_v1.KeyManagementServiceClient, transport: str
) -> None:
    kms = client(gcp) if transport == "grpc" else rest
    plaintext, aad = bytes(range(256)) * (KIB64 // 256), b"a" * KIB64
    sealed = kms.encrypt(request={"name": KEY, "plaintext": plaintext, "additional_authenticated_data": aad})
    opened = kms.decrypt(request={"name": KEY, "ciphertext": sealed.ciphertext, "additional_authenticated_data": aad})
    assert opened.plaintext == plaintext


def test_the_largest_rest_request_fits_the_rest_body_cap(
    gcp: GcpServer, rest: kms_v1.KeyManagementServiceClient
) -> None:
    """64 KiB of plaintext and 64 KiB of AAD in base64 JSON (about 175 KB) reach the method, not the body cap."""
    with pytest.raises(exceptions.BadRequest) as refused:
        rest.encrypt(
            request={"name": KEY, "plaintext": b"p" * (KIB64 + 1), "additional_authenticated_data": b"a" * KIB64}
        )
    assert refused.value.message.endswith(_too_long("plaintext", KIB64 + 1))


def _owner_aws(gcp: GcpServer, *, validate: bool = True) -> Any:
    """The AWS wire as owner; ``validate=False``: botocore sends what its own checks would refuse."""
    secrets = yaml.safe_load(gcp.server.credentials_file("owner").read_text())
    return boto3.client("kms", endpoint_url=gcp.server.endpoint, region_name="us-east-1",
                        aws_access_key_id=secrets["access_key"], aws_secret_access_key=secrets["secret_key"],
                        config=Config(parameter_validation=validate))  # fmt: skip


def _version_1_key(gcp: GcpServer) -> str:
    """The keystore key holding the crypto key's version 1."""
    return str(_owner_aws(gcp).describe_key(KeyId="alias/gcp/global/r/k/1")["KeyMetadata"]["KeyId"])


def _v1_encrypt_data(gcp: GcpServer, plaintext: str) -> bytes:
    """As owner on the v1.0 wire: encrypt-data under the keystore key holding the crypto key's version 1."""
    secrets = yaml.safe_load(gcp.server.credentials_file("owner").read_text())
    basic = BasicCredentials(secrets["access_key"], secrets["secret_key"], PROJECT)
    v1 = KmsClient.new_builder().with_credentials(basic).with_endpoint(gcp.server.endpoint).build()
    body = EncryptDataRequestBody(key_id=_version_1_key(gcp), plain_text=plaintext)
    return base64.b64decode(v1.encrypt_data(EncryptDataRequest(body=body)).cipher_text)


def _aws_error(call: Callable[..., Any], **kwargs: Any) -> str:
    with pytest.raises(ClientError) as refused:
        call(**kwargs)
    return str(refused.value.response["Error"]["Code"])


def test_the_aws_and_v1_wires_keep_their_own_limits_on_the_same_key(gcp: GcpServer) -> None:
    """Cloud KMS's 64 KiB is this wire's: AWS Encrypt still takes 4096 bytes and Decrypt a 6144-byte blob, the
    v1.0 wire's encrypt-data 4096, on the keystore key that Cloud KMS's Encrypt seals 64 KiB under."""
    key_id, aws = _version_1_key(gcp), _owner_aws(gcp, validate=False)
    assert aws.encrypt(KeyId=key_id, Plaintext=b"p" * 4096)["CiphertextBlob"]
    assert _aws_error(aws.encrypt, KeyId=key_id, Plaintext=b"p" * 4097) == "ValidationException"
    large = client(gcp).encrypt(request={"name": KEY, "plaintext": b"p" * KIB64}).ciphertext
    assert _aws_error(aws.decrypt, CiphertextBlob=large) == "ValidationException"
    assert _v1_encrypt_data(gcp, "p" * 4096)
    with pytest.raises(ClientRequestException) as refused:
        _v1_encrypt_data(gcp, "p" * 4097)
    assert (refused.value.status_code, refused.value.error_code) == (400, "KMS.2101")


def test_decrypt_datakey_on_this_wire_does_not_open_encrypt_data_ciphertexts_by_their_marker(gcp: GcpServer) -> None:
    sealed = _v1_encrypt_data(gcp, "small data for decrypt-data holders only")
    with pytest.raises(exceptions.InvalidArgument, match="Decryption failed"):
        client(gcp, "data-keys").decrypt(
            request={"name": KEY, "ciphertext": sealed, "additional_authenticated_data": DATA_AAD_MARKER}
        )


def test_encrypt_on_this_wire_does_not_seal_with_the_encrypt_data_marker(gcp: GcpServer) -> None:
    kms = client(gcp, "data-keys")
    with pytest.raises(exceptions.InvalidArgument, match="reserved"):
        kms.encrypt(request={"name": KEY, "plaintext": b"x", "additional_authenticated_data": DATA_AAD_MARKER + b"c"})
    opened = kms.encrypt(
        request={"name": KEY, "plaintext": b"x", "additional_authenticated_data": b"kubekms/encrypt-data"}
    )
    assert opened.ciphertext  # the marker's text without its NUL is anybody's AAD
