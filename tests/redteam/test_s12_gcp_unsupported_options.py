"""Red team (S12-H1) of CreateCryptoKey: an option this server does not enforce is refused, not dropped.

A ``key_access_justifications_policy`` on a CryptoKey restricts encrypt, decrypt and sign to the access reasons it
lists, and an empty list denies every one (resources.proto: "If this is under CryptoKey, it means deny-all"). The
server made such a key and served every Encrypt on it: the client asked for a key nobody may use and got one that
anybody allowed may use. ``trusted_wrapping_enabled`` (HSM_SINGLE_TENANT keys only) was dropped the same way. Both are
refused now, as imported keys and external key backends already are, and no key is made.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.cloud import kms_v1
from redteam_harness import message_call, with_crypto_key

from kubekms.devenv.gcpserver import GcpServer

PROJECT = "proj-s12o"
RING = f"projects/{PROJECT}/locations/global/keyRings/r"
Purpose = kms_v1.CryptoKey.CryptoKeyPurpose
Algorithm = kms_v1.CryptoKeyVersion.CryptoKeyVersionAlgorithm


@pytest.fixture(scope="module")
def gcp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcpServer]:
    with with_crypto_key(Path(tmp_path_factory.mktemp("s12-options")), PROJECT) as running:
        yield running


def exists(gcp: GcpServer, key_id: str) -> bool:
    code, _ = message_call(gcp, "GetCryptoKey", kms_v1.GetCryptoKeyRequest(name=f"{RING}/cryptoKeys/{key_id}"))
    assert code in (grpc.StatusCode.OK, grpc.StatusCode.NOT_FOUND), code
    return code is grpc.StatusCode.OK


@pytest.mark.parametrize("reasons", [[], [kms_v1.AccessReason.CUSTOMER_INITIATED_ACCESS]], ids=["deny-all", "one"])
def test_a_key_access_justifications_policy_is_refused(gcp: GcpServer, reasons: list[int]) -> None:
    key_id = f"kaj{len(reasons)}"
    policy = kms_v1.KeyAccessJustificationsPolicy(allowed_access_reasons=reasons)
    key = kms_v1.CryptoKey(purpose=Purpose.ENCRYPT_DECRYPT, key_access_justifications_policy=policy)
    request = kms_v1.CreateCryptoKeyRequest(parent=RING, crypto_key_id=key_id, crypto_key=key)
    code, details = message_call(gcp, "CreateCryptoKey", request)
    assert code is grpc.StatusCode.INVALID_ARGUMENT and "key_access_justifications_policy" in str(details), details
    assert not exists(gcp, key_id)


def test_trusted_wrapping_is_refused(gcp: GcpServer) -> None:
    template = kms_v1.CryptoKeyVersionTemplate(algorithm=Algorithm.EC_SIGN_P256_SHA256)
    key = kms_v1.CryptoKey(purpose=Purpose.ASYMMETRIC_SIGN, version_template=template)
    request = kms_v1.CreateCryptoKeyRequest(parent=RING, crypto_key_id="wrapped", crypto_key=key,
                                            trusted_wrapping_enabled=True)  # fmt: skip
    code, details = message_call(gcp, "CreateCryptoKey", request)
    assert code is grpc.StatusCode.INVALID_ARGUMENT and "trusted_wrapping_enabled" in str(details), details
    assert not exists(gcp, "wrapped")


def test_trusted_wrapping_of_a_new_version_is_refused(gcp: GcpServer) -> None:
    template = kms_v1.CryptoKeyVersionTemplate(algorithm=Algorithm.EC_SIGN_P256_SHA256)
    key = kms_v1.CryptoKey(purpose=Purpose.ASYMMETRIC_SIGN, version_template=template)
    request = kms_v1.CreateCryptoKeyRequest(parent=RING, crypto_key_id="signer", crypto_key=key)
    assert message_call(gcp, "CreateCryptoKey", request)[0] is grpc.StatusCode.OK
    parent = f"{RING}/cryptoKeys/signer"
    version = kms_v1.CryptoKeyVersion(trusted_wrapping_enabled=True)
    code, details = message_call(
        gcp, "CreateCryptoKeyVersion", kms_v1.CreateCryptoKeyVersionRequest(parent=parent, crypto_key_version=version)
    )
    assert code is grpc.StatusCode.INVALID_ARGUMENT and "trusted_wrapping_enabled" in str(details), details
    code, answer = message_call(gcp, "ListCryptoKeyVersions", kms_v1.ListCryptoKeyVersionsRequest(parent=parent))
    assert code is grpc.StatusCode.OK and isinstance(answer, bytes)
    assert [v.name for v in kms_v1.ListCryptoKeyVersionsResponse.deserialize(answer).crypto_key_versions] == [
        f"{parent}/cryptoKeyVersions/1"
    ]


def test_a_key_without_them_is_made(gcp: GcpServer) -> None:
    key = kms_v1.CryptoKey(purpose=Purpose.ENCRYPT_DECRYPT)
    request = kms_v1.CreateCryptoKeyRequest(parent=RING, crypto_key_id="plain", crypto_key=key)
    code, _ = message_call(gcp, "CreateCryptoKey", request)
    assert code is grpc.StatusCode.OK and exists(gcp, "plain")
