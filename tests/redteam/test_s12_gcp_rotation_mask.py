"""Red team (S12-H1) of UpdateCryptoKey's update_mask on the rotation schedule (AIP-134: a field the mask does not name
is neither read nor written).

A mask of ``rotation_period`` alone used to take ``next_rotation_time`` from the request too: a value the client
never asked to change was written (the key would rotate when the request's stray field said), and a request without
one was refused although the key keeps its stored next_rotation_time. Each field now follows the mask alone.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from google.cloud import kms_v1
from google.protobuf import duration_pb2, field_mask_pb2, timestamp_pb2
from redteam_harness import message_call, with_crypto_key

from kubekms.devenv.gcpserver import GcpServer

PROJECT = "proj-s12m"
KEY = f"projects/{PROJECT}/locations/global/keyRings/r/cryptoKeys/k"
DAY = 86400


@pytest.fixture(scope="module")
def gcp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcpServer]:
    with with_crypto_key(Path(tmp_path_factory.mktemp("s12-mask")), PROJECT) as running:
        yield running


def update(gcp: GcpServer, paths: list[str], **fields: object) -> tuple[grpc.StatusCode, bytes | str]:
    key = kms_v1.CryptoKey.pb()(name=KEY, **fields)
    request = kms_v1.UpdateCryptoKeyRequest.pb()(crypto_key=key, update_mask=field_mask_pb2.FieldMask(paths=paths))
    return message_call(gcp, "UpdateCryptoKey", kms_v1.UpdateCryptoKeyRequest.wrap(request))


def stored(gcp: GcpServer) -> kms_v1.CryptoKey:
    code, answer = message_call(gcp, "GetCryptoKey", kms_v1.GetCryptoKeyRequest(name=KEY))
    assert code is grpc.StatusCode.OK and isinstance(answer, bytes), answer
    return kms_v1.CryptoKey.deserialize(answer)


def at(days: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=int(time.time()) + days * DAY)


def period(days: int) -> duration_pb2.Duration:
    return duration_pb2.Duration(seconds=days * DAY)


def test_a_mask_of_rotation_period_keeps_the_stored_next_rotation_time(gcp: GcpServer) -> None:
    scheduled = at(10)
    code, answer = update(gcp, ["rotation_period", "next_rotation_time"], rotation_period=period(30),
                          next_rotation_time=scheduled)  # fmt: skip
    assert code is grpc.StatusCode.OK, answer
    # the mask names rotation_period only: the request's next_rotation_time (2 days) is not the client's change
    code, answer = update(gcp, ["rotation_period"], rotation_period=period(7), next_rotation_time=at(2))
    assert code is grpc.StatusCode.OK, answer
    key = stored(gcp)
    assert key.rotation_period == timedelta(days=7)
    assert key.next_rotation_time == datetime.fromtimestamp(scheduled.seconds, UTC)
    # and without any next_rotation_time in the request, the stored one still satisfies "period needs a time"
    code, answer = update(gcp, ["rotation_period"], rotation_period=period(14))
    assert code is grpc.StatusCode.OK, answer
    key = stored(gcp)
    assert key.rotation_period == timedelta(days=14)
    assert key.next_rotation_time == datetime.fromtimestamp(scheduled.seconds, UTC)


def test_a_period_without_any_next_rotation_time_is_still_refused_and_nothing_changes(gcp: GcpServer) -> None:
    code, answer = update(gcp, ["rotation_period", "next_rotation_time"])  # clears both
    assert code is grpc.StatusCode.OK, answer
    code, answer = update(gcp, ["rotation_period"], rotation_period=period(30), next_rotation_time=at(3))
    assert code is grpc.StatusCode.INVALID_ARGUMENT and "next_rotation_time" in str(answer), answer
    key = stored(gcp)
    assert "rotation_period" not in key and "next_rotation_time" not in key
