"""CreateCryptoKeyVersion refuses a version this crypto key cannot have, as Cloud KMS does.

A CryptoKeyVersion asked for with an algorithm other than the key's (an RSA signing algorithm on an
ENCRYPT_DECRYPT key) was made anyway, as GOOGLE_SYMMETRIC_ENCRYPTION: the caller believes it got a
signing version. Cloud KMS answers INVALID_ARGUMENT; nothing is made. External key options likewise.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.cloud import kms_v1
from redteam_harness import bearer, raw_call

from kubekms.devenv.gcpserver import GcpServer, gcp_server

PROJECT = "proj-version"
LOCATION = f"projects/{PROJECT}/locations/global"
KEY = f"{LOCATION}/keyRings/r/cryptoKeys/k"
Algorithm = kms_v1.CryptoKeyVersion.CryptoKeyVersionAlgorithm
OK = grpc.StatusCode.OK


def _call(gcp: GcpServer, method: str, request: Any) -> tuple[grpc.StatusCode, bytes | str]:
    return raw_call(gcp, method, type(request).serialize(request), bearer(gcp))


def _versions(gcp: GcpServer) -> list[str]:
    code, answer = _call(gcp, "ListCryptoKeyVersions", kms_v1.ListCryptoKeyVersionsRequest(parent=KEY))
    assert code is OK and isinstance(answer, bytes)
    return [v.name for v in kms_v1.ListCryptoKeyVersionsResponse.deserialize(answer).crypto_key_versions]


@pytest.fixture(scope="module")
def gcp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcpServer]:
    with gcp_server(tmp_path_factory.mktemp("red-version"), project_id=PROJECT) as running:
        ring = kms_v1.CreateKeyRingRequest(parent=LOCATION, key_ring_id="r")
        assert _call(running, "CreateKeyRing", ring)[0] is OK
        purpose = kms_v1.CryptoKey.CryptoKeyPurpose.ENCRYPT_DECRYPT
        key = kms_v1.CreateCryptoKeyRequest(parent=f"{LOCATION}/keyRings/r", crypto_key_id="k",
                                            crypto_key=kms_v1.CryptoKey(purpose=purpose))  # fmt: skip
        assert _call(running, "CreateCryptoKey", key)[0] is OK
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
    assert _call(gcp, "CreateCryptoKeyVersion", request)[0] is grpc.StatusCode.INVALID_ARGUMENT
    assert _versions(gcp) == [f"{KEY}/cryptoKeyVersions/1"]


def test_the_key_s_own_algorithm_is_accepted(gcp: GcpServer) -> None:
    version = kms_v1.CryptoKeyVersion(algorithm=Algorithm.GOOGLE_SYMMETRIC_ENCRYPTION)
    code, answer = _call(
        gcp, "CreateCryptoKeyVersion", kms_v1.CreateCryptoKeyVersionRequest(parent=KEY, crypto_key_version=version)
    )
    assert code is OK and isinstance(answer, bytes)
    assert kms_v1.CryptoKeyVersion.deserialize(answer).algorithm == Algorithm.GOOGLE_SYMMETRIC_ENCRYPTION
