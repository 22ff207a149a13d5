"""Cloud KMS wire: values the official client never sends (out-of-range Timestamps and Durations, deep JSON,
claims of the wrong type) get INVALID_ARGUMENT / UNAUTHENTICATED, never INTERNAL with a traceback."""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import pytest
import requests
from google.auth import crypt
from google.auth import jwt as google_jwt
from google.cloud import kms_v1
from google.protobuf import duration_pb2, field_mask_pb2, timestamp_pb2
from redteam_harness import AUDIENCE, bearer, raw_call

from kubekms.devenv.gcpserver import GcpServer, gcp_server
from kubekms.errors import Unauthenticated
from kubekms.server.gcp_auth import JwtVerifier, new_service_account_key
from kubekms.server.principals import PrincipalGrant

PROJECT = "proj-red"
LOCATION = f"projects/{PROJECT}/locations/global"
RING = f"{LOCATION}/keyRings/red"
KEY = f"{RING}/cryptoKeys/k"
FAR = 2**62  # seconds: valid varints, far outside protobuf's Timestamp and Duration ranges
YEAR_10000 = 253402300800


@pytest.fixture(scope="module")
def gcp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcpServer]:
    with gcp_server(tmp_path_factory.mktemp("red-gcp"), project_id=PROJECT) as running:
        token = bearer(running)
        create_ring = kms_v1.CreateKeyRingRequest.pb()(parent=LOCATION, key_ring_id="red").SerializeToString()
        assert raw_call(running, "CreateKeyRing", create_ring, token)[0] is grpc.StatusCode.OK
        key = kms_v1.CryptoKey.pb()(purpose=kms_v1.CryptoKey.CryptoKeyPurpose.ENCRYPT_DECRYPT)
        create_key = kms_v1.CreateCryptoKeyRequest.pb()(parent=RING, crypto_key_id="k", crypto_key=key)
        assert raw_call(running, "CreateCryptoKey", create_key.SerializeToString(), token)[0] is grpc.StatusCode.OK
        yield running


def _update(paths: list[str], **fields: object) -> bytes:
    key = kms_v1.CryptoKey.pb()(name=KEY, **fields)
    request = kms_v1.UpdateCryptoKeyRequest.pb()(crypto_key=key, update_mask=field_mask_pb2.FieldMask(paths=paths))
    return bytes(request.SerializeToString())


def _create(key_id: str, **fields: object) -> bytes:
    key = kms_v1.CryptoKey.pb()(purpose=kms_v1.CryptoKey.CryptoKeyPurpose.ENCRYPT_DECRYPT, **fields)
    return bytes(kms_v1.CreateCryptoKeyRequest.pb()(parent=RING, crypto_key_id=key_id, crypto_key=key)
                 .SerializeToString())  # fmt: skip


def test_out_of_range_times_and_durations_are_invalid_argument(gcp: GcpServer) -> None:
    future = timestamp_pb2.Timestamp(seconds=int(time.time()) + 86400)
    calls = {
        "rotation_period 2**62 s": ("UpdateCryptoKey", _update(
            ["rotation_period", "next_rotation_time"], rotation_period=duration_pb2.Duration(seconds=FAR),
            next_rotation_time=future)),
        "rotation_period -2**62 s": ("UpdateCryptoKey", _update(
            ["rotation_period", "next_rotation_time"], rotation_period=duration_pb2.Duration(seconds=-FAR),
            next_rotation_time=future)),
        "next_rotation_time 2**62 s": ("UpdateCryptoKey", _update(
            ["next_rotation_time"], next_rotation_time=timestamp_pb2.Timestamp(seconds=FAR))),
        "next_rotation_time in year 10000": ("UpdateCryptoKey", _update(
            ["next_rotation_time"], next_rotation_time=timestamp_pb2.Timestamp(seconds=YEAR_10000))),
        "next_rotation_time nanos 2**31-1": ("UpdateCryptoKey", _update(
            ["next_rotation_time"], next_rotation_time=timestamp_pb2.Timestamp(seconds=future.seconds,
                                                                               nanos=2**31 - 1))),
        "destroy_scheduled_duration 2**62 s": ("CreateCryptoKey", _create(
            "far", destroy_scheduled_duration=duration_pb2.Duration(seconds=FAR))),
        "create with next_rotation_time 2**62 s": ("CreateCryptoKey", _create(
            "far2", rotation_period=duration_pb2.Duration(seconds=86400),
            next_rotation_time=timestamp_pb2.Timestamp(seconds=FAR))),
    }  # fmt: skip
    token = bearer(gcp)
    answers = {why: raw_call(gcp, method, body, token) for why, (method, body) in calls.items()}
    assert {why: code for why, (code, _) in answers.items()} == dict.fromkeys(calls, grpc.StatusCode.INVALID_ARGUMENT)
    assert "unexpected error" not in gcp.server.log.read_text()
    # nothing was half-made
    listed = kms_v1.ListCryptoKeysRequest.pb()(parent=RING).SerializeToString()
    assert raw_call(gcp, "ListCryptoKeys", listed, token)[0] is grpc.StatusCode.OK
    get = kms_v1.GetCryptoKeyRequest.pb()(name=f"{RING}/cryptoKeys/far").SerializeToString()
    assert raw_call(gcp, "GetCryptoKey", get, token)[0] is grpc.StatusCode.NOT_FOUND


def test_deeply_nested_rest_json_is_invalid_argument(gcp: GcpServer) -> None:
    headers = {"Authorization": f"Bearer {bearer(gcp)}", "Content-Type": "application/json"}
    url = f"{gcp.rest_endpoint}/v1/{KEY}:encrypt"
    for body in (b'{"plaintext": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
                 b'{"plaintext": "eA==", "x": ' + b'{"a": ' * 30_000 + b"1" + b"}" * 30_000 + b"}"):  # fmt: skip
        answer = requests.post(url, data=body, headers=headers, timeout=10)
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert "unexpected error" not in gcp.server.log.read_text()


def test_a_signed_token_with_claims_of_the_wrong_type_is_unauthenticated() -> None:
    email = "red@proj.iam.gserviceaccount.com"
    info, public_pem = new_service_account_key(email, "proj")
    verifier = JwtVerifier([PrincipalGrant.build("red", "AK", "SK", gcp_service_account=(email, public_pem))])
    signer = crypt.RSASigner.from_service_account_info(info)
    now = int(time.time())
    claims = {"iss": email, "sub": email, "aud": AUDIENCE, "iat": now, "exp": now + 60}
    for wrong in ({"exp": str(now + 60)}, {"iat": str(now)}, {"exp": None}, {"iat": [now]}, {"exp": {"a": 1}}):
        token = google_jwt.encode(signer, {**claims, **wrong}).decode()
        with pytest.raises(Unauthenticated):
            verifier.verify(f"Bearer {token}")
