"""Cloud KMS labels carry the operator's ownership tags (``kk`` + base32hex of ``kubekms.io/owner-uid``, the
gcp provider's encoding), so UpdateCryptoKey setting one is the "tag turns into delete" escalation the other
wires close (test_s7x_owner_tags): setting, changing or removing one also needs schedule-key-deletion on the
key; ordinary labels do not, on an owned key either (its ownership labels sent back unchanged)."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from gcp_key_support import crypto_key_labels
from google.cloud import kms_v1
from google.protobuf import field_mask_pb2
from redteam_harness import bearer, raw_call

from kubekms.devenv.gcpserver import GcpServer, gcp_server
from kubekms.devenv.kmsserver import Principal
from kubekms.providers.gcp import tags_to_labels

PROJECT = "proj-labels"
LOCATION = f"projects/{PROJECT}/locations/global"
KEY = f"{LOCATION}/keyRings/r/cryptoKeys/k"
LABELLER = Principal("labeller", actions=("batch-key-tags", "describe-key"), projects=(PROJECT,))
MANAGER = Principal("manager", actions=("batch-key-tags", "describe-key", "schedule-key-deletion"), projects=(PROJECT,))
ORIGINAL = {"team": "a"}


@pytest.fixture(scope="module")
def gcp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcpServer]:
    with gcp_server(tmp_path_factory.mktemp("s7y-labels"), principals=(LABELLER, MANAGER), project_id=PROJECT) as up:
        admin = bearer(up)
        ring = kms_v1.CreateKeyRingRequest(parent=LOCATION, key_ring_id="r")
        assert raw_call(up, "CreateKeyRing", kms_v1.CreateKeyRingRequest.serialize(ring), admin)[0].name == "OK"
        key = kms_v1.CryptoKey(purpose=kms_v1.CryptoKey.CryptoKeyPurpose.ENCRYPT_DECRYPT, labels=ORIGINAL)
        create = kms_v1.CreateCryptoKeyRequest(parent=f"{LOCATION}/keyRings/r", crypto_key_id="k", crypto_key=key)
        assert raw_call(up, "CreateCryptoKey", kms_v1.CreateCryptoKeyRequest.serialize(create), admin)[0].name == "OK"
        yield up


def _labels(gcp: GcpServer) -> dict[str, str]:
    return crypto_key_labels(gcp, KEY)


def _set_labels(gcp: GcpServer, principal: str, labels: dict[str, str]) -> grpc.StatusCode:
    update = kms_v1.UpdateCryptoKeyRequest(
        crypto_key=kms_v1.CryptoKey(name=KEY, labels=labels), update_mask=field_mask_pb2.FieldMask(paths=["labels"])
    )
    return raw_call(gcp, "UpdateCryptoKey", kms_v1.UpdateCryptoKeyRequest.serialize(update), bearer(gcp, principal))[0]


@pytest.mark.parametrize("tag_key", ["kubekms.io/owner-uid", "KubeKMS.io/owner"])
def test_a_label_only_principal_cannot_set_an_ownership_label(gcp: GcpServer, tag_key: str) -> None:
    hostile = {**ORIGINAL, **tags_to_labels({tag_key: "attacker-kmskey-uid"})}
    assert _set_labels(gcp, "labeller", hostile) is grpc.StatusCode.PERMISSION_DENIED
    assert _labels(gcp) == ORIGINAL  # nothing written
    assert _set_labels(gcp, "labeller", {"team": "b"}) is grpc.StatusCode.OK  # ordinary labels stay its own
    assert _set_labels(gcp, "labeller", ORIGINAL) is grpc.StatusCode.OK


def test_a_principal_that_may_delete_the_key_sets_an_ownership_label(gcp: GcpServer) -> None:
    owned = {**ORIGINAL, **tags_to_labels({"kubekms.io/owner-uid": "adopted"})}
    assert _set_labels(gcp, "manager", owned) is grpc.StatusCode.OK
    assert _labels(gcp) == owned
    assert _set_labels(gcp, "manager", ORIGINAL) is grpc.StatusCode.OK


def test_a_label_only_principal_cannot_remove_an_ownership_label_but_edits_the_others(gcp: GcpServer) -> None:
    owned = {**ORIGINAL, **tags_to_labels({"kubekms.io/owner-uid": "the-kmskey-uid"})}
    assert _set_labels(gcp, "manager", owned) is grpc.StatusCode.OK
    try:
        assert _set_labels(gcp, "labeller", ORIGINAL) is grpc.StatusCode.PERMISSION_DENIED  # ownership dropped
        assert _labels(gcp) == owned
        assert _set_labels(gcp, "labeller", {**owned, "team": "b"}) is grpc.StatusCode.OK
        assert _labels(gcp) == {**owned, "team": "b"}
    finally:
        assert _set_labels(gcp, "manager", ORIGINAL) is grpc.StatusCode.OK
