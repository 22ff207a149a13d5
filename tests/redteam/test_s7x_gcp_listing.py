"""One version's key policy denying DescribeKey must not break a key ring's listing for everyone it denies.

Google's AIP-211: a list leaves out the resources the caller may not see. ListCryptoKeys leaves out a crypto
key whose primary version the caller may not describe, ListCryptoKeyVersions a version it may not describe;
a page may come back shorter, and walking the page tokens still visits every other resource once. A single
read of a denied one (GetCryptoKey, GetCryptoKeyVersion) stays PERMISSION_DENIED.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from gcp_policy_support import deny_version
from google.cloud import kms_v1
from redteam_harness import bearer, raw_call

from kubekms.devenv.gcpserver import GcpServer, gcp_server
from kubekms.devenv.kmsserver import Principal

PROJECT = "proj-listing"
LOCATION = f"projects/{PROJECT}/locations/global"
RING = f"{LOCATION}/keyRings/r"
LISTER = Principal("lister", actions=("list-keys", "describe-key"), projects=(PROJECT,))
OTHER = Principal("other", actions=("list-keys", "describe-key"), projects=(PROJECT,))
OWNER = Principal("owner", projects=(PROJECT,))
OK, DENIED = grpc.StatusCode.OK, grpc.StatusCode.PERMISSION_DENIED
KEYS = ("a", "b", "c", "d")


def _call(gcp: GcpServer, principal: str, method: str, request: Any) -> tuple[grpc.StatusCode, Any]:
    code, answer = raw_call(gcp, method, type(request).serialize(request), bearer(gcp, principal))
    response = getattr(kms_v1, f"{method}Response", None) or getattr(kms_v1, method.removeprefix("Get"), None)
    return code, response.deserialize(answer) if response is not None and isinstance(answer, bytes) else answer


@pytest.fixture(scope="module")
def gcp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcpServer]:
    with gcp_server(tmp_path_factory.mktemp("red-listing"), principals=(LISTER, OTHER, OWNER),
                    project_id=PROJECT) as running:  # fmt: skip
        ring = kms_v1.CreateKeyRingRequest(parent=LOCATION, key_ring_id="r")
        assert _call(running, "admin", "CreateKeyRing", ring)[0] is OK
        purpose = kms_v1.CryptoKey.CryptoKeyPurpose.ENCRYPT_DECRYPT
        for key in KEYS:
            created = kms_v1.CreateCryptoKeyRequest(parent=RING, crypto_key_id=key,
                                                    crypto_key=kms_v1.CryptoKey(purpose=purpose))  # fmt: skip
            assert _call(running, "admin", "CreateCryptoKey", created)[0] is OK
        for _ in range(2):  # a: versions 1 (primary), 2, 3
            version = kms_v1.CreateCryptoKeyVersionRequest(parent=f"{RING}/cryptoKeys/a")
            assert _call(running, "admin", "CreateCryptoKeyVersion", version)[0] is OK
        deny_version(running, PROJECT, "r/b", 1, ["lister"])  # b's primary
        deny_version(running, PROJECT, "r/a", 2, ["lister"])  # not a's primary
        yield running


def _walk(gcp: GcpServer, principal: str, method: str, parent: str, page_size: int) -> list[str]:
    """Every name the pages give, following next_page_token to its end."""
    request_type, field = {"ListCryptoKeys": (kms_v1.ListCryptoKeysRequest, "crypto_keys"),
                           "ListCryptoKeyVersions": (kms_v1.ListCryptoKeyVersionsRequest,
                                                     "crypto_key_versions")}[method]  # fmt: skip
    names: list[str] = []
    token = ""
    for _ in range(20):
        code, page = _call(gcp, principal, method, request_type(parent=parent, page_size=page_size, page_token=token))
        assert code is OK, page
        names += [item.name.rsplit("/", 1)[1] for item in getattr(page, field)]
        token = page.next_page_token
        if not token:
            return names
    raise AssertionError("the page tokens never ended")


@pytest.mark.parametrize("page_size", [0, 1, 2, 3])
def test_a_key_denied_to_one_principal_is_left_out_of_its_list_only(gcp: GcpServer, page_size: int) -> None:
    assert _walk(gcp, "lister", "ListCryptoKeys", RING, page_size) == ["a", "c", "d"]
    assert _walk(gcp, "other", "ListCryptoKeys", RING, page_size) == list(KEYS)
    assert _walk(gcp, "owner", "ListCryptoKeys", RING, page_size) == list(KEYS)


@pytest.mark.parametrize("page_size", [0, 1, 2])
def test_a_version_denied_to_one_principal_is_left_out_of_its_list_only(gcp: GcpServer, page_size: int) -> None:
    key = f"{RING}/cryptoKeys/a"
    assert _walk(gcp, "lister", "ListCryptoKeyVersions", key, page_size) == ["1", "3"]
    assert _walk(gcp, "other", "ListCryptoKeyVersions", key, page_size) == ["1", "2", "3"]


def test_single_reads_of_a_denied_one_stay_refused(gcp: GcpServer) -> None:
    assert _call(gcp, "lister", "GetCryptoKey", kms_v1.GetCryptoKeyRequest(name=f"{RING}/cryptoKeys/b"))[0] is DENIED
    version = kms_v1.GetCryptoKeyVersionRequest(name=f"{RING}/cryptoKeys/a/cryptoKeyVersions/2")
    assert _call(gcp, "lister", "GetCryptoKeyVersion", version)[0] is DENIED
    code, key = _call(gcp, "lister", "GetCryptoKey", kms_v1.GetCryptoKeyRequest(name=f"{RING}/cryptoKeys/a"))
    assert code is OK and key.primary.name.endswith("/cryptoKeyVersions/1")
    assert _call(gcp, "other", "GetCryptoKey", kms_v1.GetCryptoKeyRequest(name=f"{RING}/cryptoKeys/b"))[0] is OK
