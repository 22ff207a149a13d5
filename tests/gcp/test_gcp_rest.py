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
        ("DELETE", key_path, None, 501, "UNIMPLEMENTED"),  # DeleteCryptoKey: a method not offered
        ("PUT", key_path, None, 404, "NOT_FOUND"),
        ("GET", "/v2/anything", None, 404, "NOT_FOUND"),
    ]:
        code, answer = _raw(gcp, method, path, body, token if status != "UNAUTHENTICATED" else None)
        assert (code, answer["error"]["status"], answer["error"]["code"]) == (want, status, want), (path, answer)
    code, answer = _raw(gcp, "POST", f"{key_path}:encrypt", b'{"plaintext": "' + b"A" * 400_000 + b'"}', token)
    assert (code, answer["error"]["status"]) == (400, "INVALID_ARGUMENT") and "exceeds" in answer["error"]["message"]
    code, answer = _raw(gcp, "GET", f"/v1/{LOCATION}/keyRings/rest", None, token)
    assert code == 200 and answer["name"] == f"{LOCATION}/keyRings/rest"


def _token(gcp: GcpServer) -> str:
    creds = credentials(gcp, "admin").with_always_use_jwt_access(True)
    creds._create_self_signed_jwt("https://cloudkms.googleapis.com/")
    creds.refresh(None)
    token: str = creds.token
    return token


def test_what_the_node_rest_fallback_sends(gcp: GcpServer) -> None:
    """@google-cloud/kms with ``fallback: true`` (google-gax's REST transport) sends the JSON string ``""`` as the
    body of a method whose body field it was not given (CreateKeyRing without key_ring), and asks
    ``$alt=json;enum-encoding=int``: enums in the answer as numbers, as Google's front end gives them."""
    token, numeric = _token(gcp), "%24alt=json%3Benum-encoding=int"
    code, ring = _raw(gcp, "POST", f"/v1/{LOCATION}/keyRings?keyRingId=fallback&{numeric}", b'""', token)
    assert code == 200 and ring["name"] == f"{LOCATION}/keyRings/fallback", ring
    code, key = _raw(gcp, "POST", f"/v1/{LOCATION}/keyRings/fallback/cryptoKeys?cryptoKeyId=k&{numeric}",
                     b'{"purpose": 1}', token)  # fmt: skip
    assert code == 200 and key["purpose"] == 1 and key["primary"]["state"] == 1, key
    assert key["primary"]["algorithm"] == 1 and key["versionTemplate"]["protectionLevel"] == 1
    code, named = _raw(gcp, "GET", f"/v1/{LOCATION}/keyRings/fallback/cryptoKeys/k", None, token)
    assert code == 200 and named["purpose"] == "ENCRYPT_DECRYPT" and named["primary"]["state"] == "ENABLED"
    code, answer = _raw(gcp, "POST", f"/v1/{LOCATION}/keyRings?keyRingId=other", b'"text"', token)
    assert (code, answer["error"]["status"]) == (400, "INVALID_ARGUMENT")


def test_update_mask_paths_in_snake_case_and_methods_not_offered(gcp: GcpServer) -> None:
    """Node's fallback puts update_mask in the query as the caller wrote its paths (snake_case, as Google's
    samples do), which Google's front end takes; protobuf's JSON parser alone wants lowerCamelCase. A Cloud KMS
    method this server does not offer is UNIMPLEMENTED over REST as over gRPC, not a 404 a client reads as a
    missing key."""
    token = _token(gcp)
    assert _raw(gcp, "POST", f"/v1/{LOCATION}/keyRings?keyRingId=masks", b"{}", token)[0] == 200
    key = f"/v1/{LOCATION}/keyRings/masks/cryptoKeys/masked"
    code, _ = _raw(gcp, "POST", f"/v1/{LOCATION}/keyRings/masks/cryptoKeys?cryptoKeyId=masked",
                   b'{"purpose": "ENCRYPT_DECRYPT"}', token)  # fmt: skip
    assert code == 200
    body = json.dumps({"labels": {"team": "risk"}, "rotationPeriod": "86400s",
                       "nextRotationTime": "2099-01-01T00:00:00Z"}).encode()  # fmt: skip
    for mask in ("labels,rotation_period,next_rotation_time", "labels,rotationPeriod,nextRotationTime"):
        code, updated = _raw(gcp, "PATCH", f"{key}?updateMask={mask}", body, token)
        assert code == 200 and updated["rotationPeriod"] == "86400s" and updated["labels"] == {"team": "risk"}, updated
    code, refused = _raw(gcp, "PATCH", f"{key}?updateMask=purpose", body, token)
    assert (code, refused["error"]["status"]) == (400, "INVALID_ARGUMENT") and "purpose" in refused["error"]["message"]
    version = f"{key}/cryptoKeyVersions/1"
    for method, path in (("POST", f"{version}:rawDecrypt"), ("GET", f"/v1/{LOCATION}/keyRings/masks/importJobs"),
                         ("GET", f"/v1/{LOCATION}/keyRings/masks:getIamPolicy")):  # fmt: skip
        code, answer = _raw(gcp, method, path, b"{}" if method == "POST" else None, token)
        assert (code, answer["error"]["status"]) == (501, "UNIMPLEMENTED"), (path, answer)
    assert _raw(gcp, "GET", f"{key}/cryptoKeyVersions/1/elsewhere", None, token)[0] == 404


def test_query_parameters_take_their_fields_types(gcp: GcpServer) -> None:
    """Query parameters are text; HTTP transcoding reads each as its field's type. Java's REST transport sends
    skipInitialVersionCreation=false on every CreateCryptoKey (was 400: protobuf's JSON wants a bool), and
    enums may come as numbers (Node's fallback asks enum-encoding=int) or names."""
    token = _token(gcp)
    assert _raw(gcp, "POST", f"/v1/{LOCATION}/keyRings?keyRingId=typed", b"{}", token)[0] == 200
    keys = f"/v1/{LOCATION}/keyRings/typed/cryptoKeys"
    body = b'{"purpose": "ENCRYPT_DECRYPT"}'
    code, with_version = _raw(gcp, "POST", f"{keys}?cryptoKeyId=a&skipInitialVersionCreation=false", body, token)
    assert code == 200 and with_version["primary"]["name"].endswith("/a/cryptoKeyVersions/1"), with_version
    code, bare = _raw(gcp, "POST", f"{keys}?cryptoKeyId=b&skip_initial_version_creation=true", body, token)
    assert code == 200 and "primary" not in bare, bare
    for view in ("1", "FULL", "CRYPTO_KEY_VERSION_VIEW_UNSPECIFIED"):
        code, listed = _raw(gcp, "GET", f"{keys}?versionView={view}&pageSize=1", None, token)
        assert code == 200 and listed["totalSize"] == 2, (view, listed)
    code, refused = _raw(gcp, "POST", f"{keys}?cryptoKeyId=c&skipInitialVersionCreation=maybe", body, token)
    assert (code, refused["error"]["status"]) == (400, "INVALID_ARGUMENT")


def test_a_patch_sent_as_post_with_a_method_override(gcp: GcpServer) -> None:
    """Java's REST transport (google-http-client over HttpURLConnection, which has no PATCH) sends
    UpdateCryptoKey and UpdateCryptoKeyVersion as POST with ``X-HTTP-Method-Override: PATCH``, as Google's front
    end takes them (was 404: no POST route at a crypto key's path)."""
    token = _token(gcp)
    assert _raw(gcp, "POST", f"/v1/{LOCATION}/keyRings?keyRingId=override", b"{}", token)[0] == 200
    key = f"/v1/{LOCATION}/keyRings/override/cryptoKeys/k"
    assert _raw(gcp, "POST", f"/v1/{LOCATION}/keyRings/override/cryptoKeys?cryptoKeyId=k",
                b'{"purpose": "ENCRYPT_DECRYPT"}', token)[0] == 200  # fmt: skip

    def post(path: str, body: bytes, override: str) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(f"{gcp.rest_endpoint}{path}", data=body, method="POST")
        for header, value in (("Authorization", f"Bearer {token}"), ("Content-Type", "application/json"),
                              ("X-HTTP-Method-Override", override)):  # fmt: skip
            request.add_header(header, value)
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    code, updated = post(f"{key}?updateMask=labels", b'{"labels": {"via": "override"}}', "PATCH")
    assert code == 200 and updated["labels"] == {"via": "override"}, updated
    code, version = post(f"{key}/cryptoKeyVersions/1?updateMask=state", b'{"state": "DISABLED"}', "patch")
    assert code == 200 and version["state"] == "DISABLED", version
    code, missing = post(f"{key}?updateMask=labels", b"{}", "BREW")
    assert (code, missing["error"]["status"]) == (404, "NOT_FOUND")
