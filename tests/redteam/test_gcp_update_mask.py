"""UpdateCryptoKey needs the permission of every field its update_mask names: a principal allowed to change the
rotation schedule only must not rewrite labels (which carry the operator's ownership tags) by naming both."""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest
from gcp_key_support import crypto_key_labels
from google.cloud import kms_v1
from google.protobuf import duration_pb2, field_mask_pb2, timestamp_pb2
from redteam_harness import bearer, raw_call

from kubekms.devenv.gcpserver import GcpServer, gcp_server
from kubekms.devenv.kmsserver import Principal

PROJECT = "proj-mask"
LOCATION = f"projects/{PROJECT}/locations/global"
KEY = f"{LOCATION}/keyRings/r/cryptoKeys/k"
ROTATOR = Principal("rotator", actions=("update-key-rotation-interval", "describe-key"), projects=(PROJECT,))


@pytest.fixture(scope="module")
def gcp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcpServer]:
    with gcp_server(tmp_path_factory.mktemp("red-mask"), principals=(ROTATOR,), project_id=PROJECT) as running:
        admin = bearer(running)
        ring = kms_v1.CreateKeyRingRequest(parent=LOCATION, key_ring_id="r")
        assert raw_call(running, "CreateKeyRing", kms_v1.CreateKeyRingRequest.serialize(ring), admin)[0].name == "OK"
        key = kms_v1.CryptoKey(purpose=kms_v1.CryptoKey.CryptoKeyPurpose.ENCRYPT_DECRYPT, labels={"owner": "team-a"})
        create = kms_v1.CreateCryptoKeyRequest(parent=f"{LOCATION}/keyRings/r", crypto_key_id="k", crypto_key=key)
        assert (
            raw_call(running, "CreateCryptoKey", kms_v1.CreateCryptoKeyRequest.serialize(create), admin)[0].name == "OK"
        )
        yield running


def _labels(gcp: GcpServer) -> dict[str, str]:
    return crypto_key_labels(gcp, KEY)


def test_labels_need_their_own_permission_beside_rotation(gcp: GcpServer) -> None:
    key = kms_v1.CryptoKey.pb()(
        name=KEY,
        labels={"owner": "mallory"},
        rotation_period=duration_pb2.Duration(seconds=86400 * 30),
        next_rotation_time=timestamp_pb2.Timestamp(seconds=int(time.time()) + 86400),
    )
    paths = ["labels", "rotation_period", "next_rotation_time"]
    both = kms_v1.UpdateCryptoKeyRequest.pb()(crypto_key=key, update_mask=field_mask_pb2.FieldMask(paths=paths))
    code, _ = raw_call(gcp, "UpdateCryptoKey", both.SerializeToString(), bearer(gcp, "rotator"))
    assert code is grpc.StatusCode.PERMISSION_DENIED
    assert _labels(gcp) == {"owner": "team-a"}
    rotation_only = kms_v1.UpdateCryptoKeyRequest.pb()(
        crypto_key=key, update_mask=field_mask_pb2.FieldMask(paths=paths[1:])
    )
    assert (
        raw_call(gcp, "UpdateCryptoKey", rotation_only.SerializeToString(), bearer(gcp, "rotator"))[0]
        is grpc.StatusCode.OK
    )
