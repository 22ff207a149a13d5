"""A Deny in a version's key policy also refuses the Cloud KMS reads that describe that version.

Cloud KMS has no per-version IAM; this server does (a version is a keystore key with a policy). The
choice, as Google's AIP-211 answers a read of a resource the caller may not see: PERMISSION_DENIED,
never an answer with the version left out (a CryptoKey without its primary reads as "no primary").
GetCryptoKey and UpdateCryptoKey describe the primary version. Lists leave out what the caller may not
see (AIP-211; ListCryptoKeys a crypto key whose primary it may not describe, ListCryptoKeyVersions such a
version: test_s7x_gcp_listing). An update refused for that reason writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from gcp_policy_support import deny_version
from google.cloud import kms_v1
from google.protobuf import field_mask_pb2
from redteam_harness import bearer, raw_call

from kubekms.devenv.gcpserver import GcpServer, gcp_server
from kubekms.devenv.kmsserver import Principal

PROJECT = "proj-reads"
LOCATION = f"projects/{PROJECT}/locations/global"
RING = f"{LOCATION}/keyRings/r"
KEY = f"{RING}/cryptoKeys/k"
APP = Principal("app", actions=("describe-key", "batch-key-tags"), keys=(KEY,), projects=(PROJECT,))
LISTER = Principal("lister", actions=("list-keys", "describe-key"), projects=(PROJECT,))
OWNER = Principal("owner", projects=(PROJECT,))
OK, DENIED = grpc.StatusCode.OK, grpc.StatusCode.PERMISSION_DENIED


def _call(gcp: GcpServer, principal: str, method: str, request: Any) -> tuple[grpc.StatusCode, Any]:
    code, answer = raw_call(gcp, method, type(request).serialize(request), bearer(gcp, principal))
    response = {"GetCryptoKey": kms_v1.CryptoKey, "UpdateCryptoKey": kms_v1.CryptoKey}.get(
        method, getattr(kms_v1, f"{method}Response", None)
    )
    return code, response.deserialize(answer) if response is not None and isinstance(answer, bytes) else answer


@pytest.fixture(scope="module")
def gcp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcpServer]:
    with gcp_server(tmp_path_factory.mktemp("red-reads"), principals=(APP, LISTER, OWNER),
                    project_id=PROJECT) as running:  # fmt: skip
        purpose = kms_v1.CryptoKey.CryptoKeyPurpose.ENCRYPT_DECRYPT
        assert (
            _call(running, "admin", "CreateKeyRing", kms_v1.CreateKeyRingRequest(parent=LOCATION, key_ring_id="r"))[0]
            is OK
        )
        created = kms_v1.CreateCryptoKeyRequest(
            parent=RING, crypto_key_id="k", crypto_key=kms_v1.CryptoKey(purpose=purpose, labels={"a": "1"})
        )
        assert _call(running, "admin", "CreateCryptoKey", created)[0] is OK
        version = kms_v1.CreateCryptoKeyVersionRequest(parent=KEY)
        assert _call(running, "admin", "CreateCryptoKeyVersion", version)[0] is OK  # version 2, not primary
        yield running


def test_a_denied_version_is_refused_on_every_single_read_that_describes_it(gcp: GcpServer) -> None:
    get_key = kms_v1.GetCryptoKeyRequest(name=KEY)
    list_versions = kms_v1.ListCryptoKeyVersionsRequest(parent=KEY)
    list_keys = kms_v1.ListCryptoKeysRequest(parent=RING)
    code, versions = _call(gcp, "app", "ListCryptoKeyVersions", list_versions)
    assert code is OK and len(versions.crypto_key_versions) == 2
    assert _call(gcp, "lister", "ListCryptoKeys", list_keys)[0] is OK

    deny_version(gcp, PROJECT, "r/k", 2, ["app", "lister"])  # not the primary
    code, key = _call(gcp, "app", "GetCryptoKey", get_key)
    assert code is OK and key.primary.name.endswith("/cryptoKeyVersions/1")
    assert _call(gcp, "lister", "ListCryptoKeys", list_keys)[0] is OK
    code, page = _call(gcp, "app", "ListCryptoKeyVersions", list_versions)
    assert code is OK and [v.name[-1] for v in page.crypto_key_versions] == ["1"]  # version 2 left out
    code, page = _call(gcp, "lister", "ListCryptoKeyVersions", list_versions)
    assert code is OK and [v.name[-1] for v in page.crypto_key_versions] == ["1"]
    first_only = kms_v1.ListCryptoKeyVersionsRequest(parent=KEY, page_size=1)
    code, page = _call(gcp, "app", "ListCryptoKeyVersions", first_only)  # a page without version 2
    assert code is OK and [v.name[-1] for v in page.crypto_key_versions] == ["1"]
    assert _call(gcp, "owner", "ListCryptoKeyVersions", list_versions)[0] is OK

    deny_version(gcp, PROJECT, "r/k", 1, ["app", "lister"])  # the primary
    assert _call(gcp, "app", "GetCryptoKey", get_key)[0] is DENIED
    code, keys = _call(gcp, "lister", "ListCryptoKeys", list_keys)
    assert code is OK and not keys.crypto_keys  # left out, not refused
    relabel = kms_v1.UpdateCryptoKeyRequest(crypto_key=kms_v1.CryptoKey(name=KEY, labels={"a": "2"}),
                                            update_mask=field_mask_pb2.FieldMask(paths=["labels"]))  # fmt: skip
    assert _call(gcp, "app", "UpdateCryptoKey", relabel)[0] is DENIED
    code, key = _call(gcp, "owner", "GetCryptoKey", get_key)
    assert code is OK and dict(key.labels) == {"a": "1"}  # the refused update wrote nothing
