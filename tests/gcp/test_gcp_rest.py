"""The Cloud KMS REST mapping with the official client's ``rest`` transport, and raw HTTP for what it cannot send."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import google_crc32c
import pytest
from gcp_harness import LOCATION, client, credentials
from google.api_core import exceptions
from google.cloud import kms_v1

from kubekms.devenv.gcpserver import GcpServer

State = kms_v1.CryptoKeyVersion.CryptoKeyVersionState


@pytest.fixture(scope="module")
def rest(gcp: GcpServer) -> kms_v1.KeyManagementServiceClient:
    return kms_v1.KeyManagementServiceClient(
        credentials=credentials(gcp, "admin"), client_options={"api_endpoint": gcp.rest_endpoint}, transport="rest"
    )


def test_lifecycle_over_rest_is_the_same_keystore_as_grpc(
    gcp: GcpServer, rest: kms_v1.KeyManagementServiceClient
) -> None:
    ring = rest.create_key_ring(request={"parent": LOCATION, "key_ring_id": "rest"})
    key = rest.create_crypto_key(request={"parent": ring.name, "crypto_key_id": "k", "crypto_key": {
        "purpose": kms_v1.CryptoKey.CryptoKeyPurpose.ENCRYPT_DECRYPT, "labels": {"via": "rest"}}})  # fmt: skip
    assert key.primary.state == State.ENABLED and dict(key.labels) == {"via": "rest"}
    plaintext, aad = b"over json", b"ctx"
    sealed = rest.encrypt(request={"name": key.name, "plaintext": plaintext, "additional_authenticated_data": aad,
                                   "plaintext_crc32c": google_crc32c.value(plaintext)})  # fmt: skip
    assert sealed.verified_plaintext_crc32c and sealed.ciphertext_crc32c == google_crc32c.value(sealed.ciphertext)
    grpc_client = client(gcp, "admin")  # the other wire reads the same keys
    opened = grpc_client.decrypt(request={"name": key.name, "ciphertext": sealed.ciphertext,
                                          "additional_authenticated_data": aad})  # fmt: skip
    assert opened.plaintext == plaintext
    rest.create_crypto_key_version(request={"parent": key.name, "crypto_key_version": {}})
    updated = rest.update_crypto_key_primary_version(request={"name": key.name, "crypto_key_version_id": "2"})
    assert updated.primary.name.endswith("/2")
    disabled = rest.update_crypto_key_version(request={
        "crypto_key_version": {"name": f"{key.name}/cryptoKeyVersions/1", "state": State.DISABLED},
        "update_mask": {"paths": ["state"]}})  # fmt: skip
    assert disabled.state == State.DISABLED
    with pytest.raises(exceptions.BadRequest, match="is not enabled"):
        rest.decrypt(request={"name": key.name, "ciphertext": sealed.ciphertext, "additional_authenticated_data": aad})
    scheduled = rest.destroy_crypto_key_version(request={"name": f"{key.name}/cryptoKeyVersions/1"})
    assert scheduled.state == State.DESTROY_SCHEDULED
    assert rest.restore_crypto_key_version(request={"name": scheduled.name}).state == State.DISABLED
    versions = list(rest.list_crypto_key_versions(request={"parent": key.name, "page_size": 1}))
    assert [v.name.rsplit("/", 1)[1] for v in versions] == ["1", "2"]
    assert len(rest.generate_random_bytes(request={"location": LOCATION, "length_bytes": 16}).data) == 16
    with pytest.raises(exceptions.NotFound):
        rest.get_crypto_key(request={"name": f"{ring.name}/cryptoKeys/absent"})
    with pytest.raises(exceptions.Conflict):
        rest.create_key_ring(request={"parent": LOCATION, "key_ring_id": "rest"})


def _raw(gcp: GcpServer, method: str, path: str, body: bytes | None = None,
         token: str | None = None) -> tuple[int, dict[str, Any]]:  # fmt: skip
    request = urllib.request.Request(f"{gcp.rest_endpoint}{path}", data=body, method=method)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_hostile_http_gets_google_json_errors(gcp: GcpServer) -> None:
    creds = credentials(gcp, "admin").with_always_use_jwt_access(True)
    creds._create_self_signed_jwt("https://cloudkms.googleapis.com/")
    creds.refresh(None)
    token = creds.token
    key_path = f"/v1/{LOCATION}/keyRings/rest/cryptoKeys/k"
    for method, path, body, want, status in [
        ("GET", f"/v1/{LOCATION}/keyRings", None, 401, "UNAUTHENTICATED"),  # no token below: first case only
        ("POST", f"{key_path}:encrypt", b"{not json", 400, "INVALID_ARGUMENT"),
        ("POST", f"{key_path}:encrypt", b"[1, 2]", 400, "INVALID_ARGUMENT"),
        ("POST", f"{key_path}:encrypt", b'{"plaintext": "not base64!"}', 400, "INVALID_ARGUMENT"),
        ("POST", f"{key_path}:encrypt", b'{"unknownField": 1}', 400, "INVALID_ARGUMENT"),
        ("GET", f"/v1/{LOCATION}/keyRings?pageSize=abc", None, 400, "INVALID_ARGUMENT"),
        ("GET", f"/v1/{LOCATION}/keyRings?pageToken=zzz", None, 400, "INVALID_ARGUMENT"),
        ("GET", "/v1/projects/proj-gcp/locations/global/keyRings/x%2Fy", None, 404, "NOT_FOUND"),  # no such path
        ("GET", "/v1/projects/proj-gcp/locations/global/keyRings/x%0A", None, 400, "INVALID_ARGUMENT"),
        ("DELETE", key_path, None, 404, "NOT_FOUND"),
        ("GET", "/v2/anything", None, 404, "NOT_FOUND"),
    ]:
        code, answer = _raw(gcp, method, path, body, token if status != "UNAUTHENTICATED" else None)
        assert (code, answer["error"]["status"], answer["error"]["code"]) == (want, status, want), (path, answer)
    code, answer = _raw(gcp, "POST", f"{key_path}:encrypt", b'{"plaintext": "' + b"A" * 400_000 + b'"}', token)
    assert (code, answer["error"]["status"]) == (400, "INVALID_ARGUMENT") and "exceeds" in answer["error"]["message"]
    code, answer = _raw(gcp, "GET", f"/v1/{LOCATION}/keyRings/rest", None, token)
    assert code == 200 and answer["name"] == f"{LOCATION}/keyRings/rest"
