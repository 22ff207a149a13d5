"""CreateCryptoKeyVersion refuses a version this crypto key cannot have, as Cloud KMS does.

A CryptoKeyVersion asked for with an algorithm other than the key's (an RSA signing algorithm on an
ENCRYPT_DECRYPT key) was made anyway, as GOOGLE_SYMMETRIC_ENCRYPTION: the caller believes it got a
signing version. Cloud KMS answers INVALID_ARGUMENT; nothing is made. External key options likewise.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from google.cloud import kms_v1
from redteam_harness import message_call, with_crypto_key

from kubekms.devenv.gcpserver import GcpServer

PROJECT = "proj-version"
LOCATION = f"projects/{PROJECT}/locations/global"
KEY = f"{LOCATION}/keyRings/r/cryptoKeys/k"
Algorithm = kms_v1.CryptoKeyVersion.CryptoKeyVersionAlgorithm
OK = grpc.StatusCode.OK


def _versions(gcp: GcpServer) -> list[str]:
    code, answer = message_call(gcp, "ListCryptoKeyVersions", kms_v1.ListCryptoKeyVersionsRequest(parent=KEY))
    assert code is OK and isinstance(answer, bytes)
    return [v.name for v in kms_v1.ListCryptoKeyVersionsResponse.deserialize(answer).crypto_key_versions]


@pytest.fixture(scope="module")
def gcp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcpServer]:
    with with_crypto_key(tmp_path_factory.mktemp("red-version"), PROJECT) as running:
        yield running


@pytest.mark.parametrize(
    "version",
    [
        kms_v1.CryptoKeyVersion(algorithm=Algorithm.RSA_SIGN_PSS_2048_SHA256),
        kms_v1.CryptoKeyVersion(algorithm=Algorithm.EXTERNAL_SYMMETRIC_ENCRYPTION),
        kms_v1.CryptoKeyVersion(
            external_protection_level_options=kms_v1.ExternalProtectionLevelOptions(external_key_uri="https://e/k")
        ),
    ],
    ids=["rsa-sign", "external-symmetric", "external-key-uri"],
)
def test_a_version_the_key_cannot_have_is_refused(gcp: GcpServer, version: kms_v1.CryptoKeyVersion) -> None:
    request = kms_v1.CreateCryptoKeyVersionRequest(parent=KEY, crypto_key_version=version)
    assert message_call(gcp, "CreateCryptoKeyVersion", request)[0] is grpc.StatusCode.INVALID_ARGUMENT
    assert _versions(gcp) == [f"{KEY}/cryptoKeyVersions/1"]


def test_the_key_s_own_algorithm_is_accepted(gcp: GcpServer) -> None:
    version = kms_v1.CryptoKeyVersion(algorithm=Algorithm.GOOGLE_SYMMETRIC_ENCRYPTION)
    code, answer = message_call(
        gcp, "CreateCryptoKeyVersion", kms_v1.CreateCryptoKeyVersionRequest(parent=KEY, crypto_key_version=version)
    )
    assert code is OK and isinstance(answer, bytes)
    assert kms_v1.CryptoKeyVersion.deserialize(answer).algorithm == Algorithm.GOOGLE_SYMMETRIC_ENCRYPTION
