"""Hostile input to the Cloud KMS API: each bad request gets its precise status, the server keeps serving."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from gcp_harness import LOCATION, PROJECT, client
from google.api_core import exceptions
from google.auth import crypt
from google.auth import jwt as google_jwt
from google.cloud import kms_v1

from kubekms.devenv.gcpserver import GcpServer, gcp_server

Client = kms_v1.KeyManagementServiceClient
ENCRYPT_DECRYPT = kms_v1.CryptoKey.CryptoKeyPurpose.ENCRYPT_DECRYPT
EC_P256 = kms_v1.CryptoKeyVersion.CryptoKeyVersionAlgorithm.EC_SIGN_P256_SHA256
MAC = kms_v1.CryptoKey.CryptoKeyPurpose.MAC


@pytest.fixture(scope="module")
def key(admin: Client) -> kms_v1.CryptoKey:
    ring = admin.create_key_ring(request={"parent": LOCATION, "key_ring_id": "hostile"})
    return admin.create_crypto_key(
        request={"parent": ring.name, "crypto_key_id": "target", "crypto_key": {"purpose": ENCRYPT_DECRYPT}}
    )


def _ring(key: kms_v1.CryptoKey) -> str:
    return key.name.split("/cryptoKeys/")[0]


BAD_NAMES = [
    "",
    "projects",
    "projects/../locations/global/keyRings/hostile/cryptoKeys/target",
    "projects/proj-gcp/locations/global/keyRings/a b/cryptoKeys/target",
    "projects/proj-gcp/locations/GLOBAL/keyRings/hostile/cryptoKeys/target",
    "projects/proj-gcp/locations/global/keyRings/hostile/cryptoKeys/" + "k" * 64,
    "projects/proj-gcp/locations/global/keyRings/hostile/cryptoKeys/target/extra",
    "projects/proj-gcp/locations/global/keyRings/hostile/cryptoKeys/target\n",
    "projects/proj-gcp/locations/global/keyRings/hostile/cryptoKeys/\u00e9",
    "projects/proj-gcp/locations/global/keyRings/hostile/cryptoKeys/x\x00",
    "/" * 600,
]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_malformed_resource_names_are_invalid_argument(admin: Client, name: str) -> None:
    with pytest.raises(exceptions.InvalidArgument, match="name"):
        admin.get_crypto_key(request={"name": name})
    with pytest.raises(exceptions.InvalidArgument, match="name"):
        admin.encrypt(request={"name": name, "plaintext": b"x"})


def test_absent_resources_are_not_found(admin: Client, key: kms_v1.CryptoKey) -> None:
    for call, request in [
        (admin.get_key_ring, {"name": f"{LOCATION}/keyRings/nope"}),
        (admin.get_crypto_key, {"name": f"{_ring(key)}/cryptoKeys/nope"}),
        (admin.get_crypto_key_version, {"name": f"{key.name}/cryptoKeyVersions/99"}),
        (admin.encrypt, {"name": f"{_ring(key)}/cryptoKeys/nope", "plaintext": b"x"}),
        (admin.create_crypto_key, {"parent": f"{LOCATION}/keyRings/nope", "crypto_key_id": "k",
                                   "crypto_key": {"purpose": ENCRYPT_DECRYPT}}),
    ]:  # fmt: skip
        with pytest.raises(exceptions.NotFound):
            call(request=request)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"purpose": kms_v1.CryptoKey.CryptoKeyPurpose.RAW_ENCRYPT_DECRYPT}, "ASYMMETRIC_DECRYPT and MAC"),
        ({"purpose": kms_v1.CryptoKey.CryptoKeyPurpose.ASYMMETRIC_SIGN}, "version_template.algorithm is required"),
        ({"purpose": MAC, "version_template": {"algorithm": EC_P256}}, "does not suit"),
        ({"purpose": ENCRYPT_DECRYPT, "version_template": {"algorithm": EC_P256}}, "does not suit"),
        ({"purpose": kms_v1.CryptoKey.CryptoKeyPurpose.ASYMMETRIC_SIGN, "version_template": {"algorithm": EC_P256},
          "rotation_period": timedelta(days=2), "next_rotation_time": datetime.now(UTC) + timedelta(days=1)},
         "ENCRYPT_DECRYPT CryptoKeys only"),
        # Google's window: 24 hours to 120 days (whole days here)
        ({"purpose": ENCRYPT_DECRYPT, "destroy_scheduled_duration": timedelta(hours=23)}, "from 1 to 120"),
        ({"purpose": ENCRYPT_DECRYPT, "destroy_scheduled_duration": timedelta(days=121)}, "from 1 to 120"),
        ({"purpose": ENCRYPT_DECRYPT, "destroy_scheduled_duration": timedelta(days=8, hours=1)}, "whole days"),
        ({"purpose": ENCRYPT_DECRYPT, "rotation_period": timedelta(hours=1),
          "next_rotation_time": datetime.now(UTC) + timedelta(days=1)}, "rotation_period"),
        ({"purpose": ENCRYPT_DECRYPT, "rotation_period": timedelta(days=2)}, "next_rotation_time is required"),
        ({"purpose": ENCRYPT_DECRYPT, "labels": {"Bad Label": "x"}}, "invalid label"),
        ({"purpose": ENCRYPT_DECRYPT, "labels": {f"l{i}": "x" for i in range(65)}}, "at most 64 labels"),
        ({"purpose": ENCRYPT_DECRYPT, "version_template": {"protection_level": kms_v1.ProtectionLevel.HSM}},
         "SOFTWARE only"),
        ({"purpose": ENCRYPT_DECRYPT, "import_only": True}, "imported keys"),
    ],
)  # fmt: skip
def test_unsupported_crypto_keys_are_refused(admin: Client, key: kms_v1.CryptoKey, fields: Any, message: str) -> None:
    with pytest.raises(exceptions.InvalidArgument, match=message):
        admin.create_crypto_key(request={"parent": _ring(key), "crypto_key_id": "refused", "crypto_key": fields})
    with pytest.raises(exceptions.NotFound):  # nothing half-created
        admin.get_crypto_key(request={"name": f"{_ring(key)}/cryptoKeys/refused"})


def test_bad_ids_lists_updates_and_payloads(admin: Client, key: kms_v1.CryptoKey) -> None:
    bad: list[tuple[Any, dict[str, Any], str]] = [
        (admin.create_key_ring, {"parent": LOCATION, "key_ring_id": "has/slash"}, "key_ring_id"),
        (admin.create_key_ring, {"parent": LOCATION, "key_ring_id": ""}, "key_ring_id"),
        (admin.list_key_rings, {"parent": LOCATION, "page_token": "abc"}, "page_token"),
        (admin.list_key_rings, {"parent": LOCATION, "page_token": "9" * 40}, "page_token"),
        (admin.list_key_rings, {"parent": LOCATION, "page_size": 5000}, "page_size"),
        (admin.list_key_rings, {"parent": LOCATION, "page_size": -1}, "page_size"),
        (admin.list_key_rings, {"parent": LOCATION, "filter": "name"}, "filter"),
        (admin.update_crypto_key, {"crypto_key": {"name": key.name}}, "update_mask is required"),
        (admin.update_crypto_key, {"crypto_key": {"name": key.name, "purpose": 5},
                                   "update_mask": {"paths": ["purpose"]}}, "cannot update purpose"),
        (admin.update_crypto_key_version, {"crypto_key_version": {"name": key.primary.name,
                                           "state": kms_v1.CryptoKeyVersion.CryptoKeyVersionState.DESTROYED},
                                           "update_mask": {"paths": ["state"]}}, "ENABLED or DISABLED"),
        (admin.update_crypto_key_primary_version, {"name": key.name, "crypto_key_version_id": "x1"}, "version"),
        (admin.encrypt, {"name": key.name, "plaintext": b""}, "plaintext is required"),
        (admin.encrypt, {"name": key.name, "plaintext": b"x" * 65537}, "plaintext"),
        (admin.encrypt, {"name": key.name, "plaintext": b"x", "additional_authenticated_data": b"a" * 65537},
         "authenticated"),
        (admin.decrypt, {"name": key.name, "ciphertext": b""}, "Decryption failed"),
        (admin.decrypt, {"name": key.name, "ciphertext": b"KK\x01\xff" + b"\x00" * 40}, "Decryption failed"),
        (admin.decrypt, {"name": key.name, "ciphertext": b"\x00" * 5000}, "Decryption failed"),
        (admin.decrypt, {"name": f"{key.name}/cryptoKeyVersions/1", "ciphertext": b"x"}, "name"),
    ]  # fmt: skip
    for call, request, message in bad:
        with pytest.raises(exceptions.InvalidArgument, match=message):
            call(request=request)


def test_a_ciphertext_of_another_key_is_refused(admin: Client, key: kms_v1.CryptoKey) -> None:
    other = admin.create_crypto_key(
        request={"parent": _ring(key), "crypto_key_id": "other", "crypto_key": {"purpose": ENCRYPT_DECRYPT}}
    )
    sealed = admin.encrypt(request={"name": other.name, "plaintext": b"other's"}).ciphertext
    with pytest.raises(exceptions.InvalidArgument, match="Decryption failed"):
        admin.decrypt(request={"name": key.name, "ciphertext": sealed})


def test_undecodable_messages_and_unknown_methods(gcp: GcpServer, admin: Client, key: kms_v1.CryptoKey) -> None:
    info = gcp.service_account_info("admin")
    now = int(time.time())
    payload = {"iss": info["client_email"], "sub": info["client_email"], "aud": "https://cloudkms.googleapis.com/",
               "iat": now, "exp": now + 600}  # fmt: skip
    bearer = google_jwt.encode(crypt.RSASigner.from_service_account_info(info), payload).decode()
    metadata = (("authorization", f"Bearer {bearer}"),)
    with grpc.insecure_channel(gcp.endpoint) as channel:
        encrypt = channel.unary_unary("/google.cloud.kms.v1.KeyManagementService/Encrypt")
        for garbage in (b"\xff\xff\xff", b"\x0a\xff\xff\xff\xff\x0f", b"\x12\x05ab"):
            with pytest.raises(grpc.RpcError) as refused:
                encrypt(garbage, metadata=metadata, timeout=10)
            assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT, garbage
        with pytest.raises(grpc.RpcError) as unauthenticated:
            encrypt(b"\xff", timeout=10)
        assert unauthenticated.value.code() is grpc.StatusCode.UNAUTHENTICATED
        sign = channel.unary_unary("/google.cloud.kms.v1.KeyManagementService/RawDecrypt")
        with pytest.raises(grpc.RpcError) as unimplemented:
            sign(b"", metadata=metadata, timeout=10)
        assert unimplemented.value.code() is grpc.StatusCode.UNIMPLEMENTED
        too_big = channel.unary_unary("/google.cloud.kms.v1.KeyManagementService/Encrypt")
        with pytest.raises(grpc.RpcError) as oversized:
            too_big(b"\x12" + b"\xff\xff\x7f" + b"x" * 2_097_151, metadata=metadata, timeout=10)
        assert oversized.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    # still serving, and nothing logged as an unexpected error
    assert admin.encrypt(request={"name": key.name, "plaintext": b"still here"}).ciphertext
    assert "unexpected error" not in gcp.server.log.read_text()


def test_the_keystore_limit_refuses_whole(tmp_path: Path) -> None:
    """Each version is a keystore key: at the keystore's limit a crypto key is refused, not half-made."""
    with gcp_server(tmp_path, project_id=PROJECT, cmk_limit=2) as small:
        admin = client(small)
        ring = admin.create_key_ring(request={"parent": LOCATION, "key_ring_id": "full"})
        made = {"purpose": ENCRYPT_DECRYPT}
        key = admin.create_crypto_key(request={"parent": ring.name, "crypto_key_id": "one", "crypto_key": made})
        admin.create_crypto_key_version(request={"parent": key.name, "crypto_key_version": {}})
        with pytest.raises(exceptions.ResourceExhausted, match="limit"):
            admin.create_crypto_key(request={"parent": ring.name, "crypto_key_id": "two", "crypto_key": made})
        with pytest.raises(exceptions.ResourceExhausted):
            admin.create_crypto_key_version(request={"parent": key.name, "crypto_key_version": {}})
        with pytest.raises(exceptions.NotFound):
            admin.get_crypto_key(request={"name": f"{ring.name}/cryptoKeys/two"})
        assert [k.name for k in admin.list_crypto_keys(request={"parent": ring.name})] == [key.name]
        assert len(list(admin.list_crypto_key_versions(request={"parent": key.name}))) == 2
