"""Who may call the Cloud KMS API: self-signed JWTs (signature, issuer, time, audience) and least privilege."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from gcp_harness import LOCATION, PROJECT, client, credentials, kms_client
from google.api_core import exceptions
from google.auth import crypt
from google.auth import jwt as google_jwt
from google.auth.credentials import AnonymousCredentials
from google.cloud import kms_v1
from google.oauth2 import service_account

from kubekms.devenv.gcpserver import GcpServer
from kubekms.server.gcp_auth import new_service_account_key

AUDIENCE = "https://cloudkms.googleapis.com/"
ENCRYPT_DECRYPT = kms_v1.CryptoKey.CryptoKeyPurpose.ENCRYPT_DECRYPT
Client = kms_v1.KeyManagementServiceClient


@pytest.fixture(scope="module")
def app_key(admin: Client, shared_ring: kms_v1.KeyRing) -> kms_v1.CryptoKey:
    return admin.create_crypto_key(
        request={"parent": shared_ring.name, "crypto_key_id": "app", "crypto_key": {"purpose": ENCRYPT_DECRYPT}}
    )


@pytest.fixture(scope="module")
def other_key(admin: Client, shared_ring: kms_v1.KeyRing) -> kms_v1.CryptoKey:
    return admin.create_crypto_key(
        request={"parent": shared_ring.name, "crypto_key_id": "not-app", "crypto_key": {"purpose": ENCRYPT_DECRYPT}}
    )


def token(info: dict[str, str], **claims: Any) -> str:
    now = int(time.time())
    payload = {"iss": info["client_email"], "sub": info["client_email"], "aud": AUDIENCE, "iat": now,
               "exp": now + 600, **claims}  # fmt: skip
    payload = {name: value for name, value in payload.items() if value is not None}
    return google_jwt.encode(crypt.RSASigner.from_service_account_info(info), payload).decode()


def call_with(gcp: GcpServer, bearer: str | None) -> Callable[[], object]:
    """GetKeyRing with exactly this authorization header (the client's own credentials send none)."""
    client = kms_client(gcp.endpoint, AnonymousCredentials())
    metadata = [] if bearer is None else [("authorization", f"Bearer {bearer}")]
    return lambda: client.list_key_rings(request={"parent": LOCATION}, metadata=metadata)


def test_a_handmade_valid_token_is_accepted(gcp: GcpServer, shared_ring: kms_v1.KeyRing) -> None:
    listed = call_with(gcp, token(gcp.service_account_info("admin")))()
    assert shared_ring.name in [ring.name for ring in listed]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("why", "claims"),
    [
        # times are offsets from when the test runs, not from collection (a long run would
        # make "not yet valid" valid): the test adds the current time
        ("expired", {"iat": -7200, "exp": -3600}),
        ("not yet valid", {"iat": 600, "exp": 1200}),
        ("lifetime over an hour", {"exp": 7200}),
        ("other audience", {"aud": "https://example.com/"}),
        ("no audience, no scope", {"aud": None}),
        ("no audience, unrelated scope", {"aud": None, "scope": "https://www.googleapis.com/auth/devstorage"}),
        ("sub differs", {"sub": "someone@else"}),
    ],
)
def test_bad_claims_are_refused(gcp: GcpServer, why: str, claims: dict[str, Any]) -> None:
    now = int(time.time())
    dated = {name: now + value if name in ("iat", "exp") else value for name, value in claims.items()}
    with pytest.raises(exceptions.Unauthenticated):
        call_with(gcp, token(gcp.service_account_info("admin"), **dated))()


def test_scoped_token_without_audience_is_accepted(gcp: GcpServer) -> None:
    scoped = token(gcp.service_account_info("admin"), aud=None, scope="https://www.googleapis.com/auth/cloudkms")
    call_with(gcp, scoped)()
    # and the same through google-auth's own scoped self-signed JWT
    scoped_credentials = credentials(gcp, "admin").with_scopes(["https://www.googleapis.com/auth/cloud-platform"])
    list(client(gcp, creds=scoped_credentials).list_key_rings(request={"parent": LOCATION}))


def test_wrong_signature_unknown_account_garbage_and_missing_are_refused(gcp: GcpServer) -> None:
    admin_info = gcp.service_account_info("admin")
    forged_info, _ = new_service_account_key(admin_info["client_email"], PROJECT)  # same email, another key
    unknown_info, _ = new_service_account_key("nobody@proj-gcp.iam.gserviceaccount.com", PROJECT)
    app_token = token(gcp.service_account_info("app"))
    header, _, signature = app_token.split(".")
    admin_payload = token(admin_info).split(".")[1]
    for bearer, message in [
        (token(forged_info), "not verified"),
        (token(unknown_info), "unknown service account"),
        (f"{header}.{admin_payload}.{signature}", "unknown service account|not verified"),  # app's signature
        ("not.a.jwt", "malformed"),
        ("", "missing"),
        (None, "missing"),
        ("!!.@@.##", "malformed"),
        ("e30.e30.", "malformed|unknown service account"),  # {}.{}: no issuer
        ("a" * 5_000, "malformed"),  # over our 4096 (gRPC itself refuses metadata over 8 KiB)
    ]:
        with pytest.raises(exceptions.Unauthenticated, match=message):
            call_with(gcp, bearer)()
    # the official client with credentials of a key the server does not know
    forged = service_account.Credentials.from_service_account_info(forged_info)
    with pytest.raises(exceptions.Unauthenticated):
        list(client(gcp, creds=forged).list_key_rings(request={"parent": LOCATION}))


def test_a_principal_uses_only_its_key_and_its_operations(
    gcp: GcpServer, admin: Client, app_key: kms_v1.CryptoKey, other_key: kms_v1.CryptoKey
) -> None:
    app = client(gcp, "app")
    sealed = app.encrypt(request={"name": app_key.name, "plaintext": b"app data"}).ciphertext
    assert app.decrypt(request={"name": app_key.name, "ciphertext": sealed}).plaintext == b"app data"
    assert app.get_crypto_key(request={"name": app_key.name}).name == app_key.name
    with pytest.raises(exceptions.PermissionDenied, match="may not call Encrypt on key"):
        app.encrypt(request={"name": other_key.name, "plaintext": b"x"})
    with pytest.raises(exceptions.PermissionDenied, match="may not call schedule-key-deletion"):
        app.destroy_crypto_key_version(request={"name": app_key.primary.name})
    with pytest.raises(exceptions.PermissionDenied, match="may not call rotate-on-demand"):
        app.create_crypto_key_version(request={"parent": app_key.name, "crypto_key_version": {}})
    with pytest.raises(exceptions.PermissionDenied):
        app.create_key_ring(request={"parent": LOCATION, "key_ring_id": "app-ring"})
    with pytest.raises(exceptions.PermissionDenied):
        list(app.list_crypto_keys(request={"parent": app_key.name.split("/cryptoKeys/")[0]}))
    # a key the principal may not name is refused before the server looks it up: no existence oracle
    with pytest.raises(exceptions.PermissionDenied):
        app.get_crypto_key(request={"name": app_key.name.replace("/app", "/absent")})


def test_a_reader_reads_and_nothing_else(gcp: GcpServer, app_key: kms_v1.CryptoKey) -> None:
    reader = client(gcp, "reader")
    assert reader.get_crypto_key(request={"name": app_key.name}).primary.name == app_key.primary.name
    assert app_key.name in [
        key.name for key in reader.list_crypto_keys(request={"parent": app_key.name.split("/cryptoKeys/")[0]})
    ]
    with pytest.raises(exceptions.PermissionDenied, match="may not call encrypt-datakey"):
        reader.encrypt(request={"name": app_key.name, "plaintext": b"x"})
    with pytest.raises(exceptions.PermissionDenied, match="may not call create-key"):
        reader.create_key_ring(request={"parent": LOCATION, "key_ring_id": "reader-ring"})


def test_another_projects_principal_is_refused(gcp: GcpServer, app_key: kms_v1.CryptoKey) -> None:
    stranger = client(gcp, "stranger")
    with pytest.raises(exceptions.PermissionDenied, match="may not use project"):
        stranger.get_crypto_key(request={"name": app_key.name})
    # in its own project it may work: the project of the resource name is the kubekms project
    ring = stranger.create_key_ring(request={"parent": "projects/elsewhere/locations/global", "key_ring_id": "own"})
    assert ring.name == "projects/elsewhere/locations/global/keyRings/own"


def test_calls_are_audited_with_principal_method_and_resource(gcp: GcpServer, app_key: kms_v1.CryptoKey) -> None:
    app = client(gcp, "app")
    with pytest.raises(exceptions.PermissionDenied):
        app.destroy_crypto_key_version(request={"name": app_key.primary.name})
    sealed = app.encrypt(request={"name": app_key.name, "plaintext": b"audited plaintext"}).ciphertext
    wanted = [("app", "gcp:DestroyCryptoKeyVersion", "KMS.0307"), ("app", "gcp:Encrypt", "OK")]
    deadline = time.monotonic() + 10
    while True:  # the audit buffer is written on a 0.2 s timer
        entries = [json.loads(line) for line in gcp.server.audit_log.read_text().splitlines()]
        found = [(e["principal"], e["operation"], e["result"]) for e in entries if e["key_id"] == app_key.name]
        if all(item in found for item in wanted):
            break
        assert time.monotonic() < deadline, found
        time.sleep(0.05)
    text = gcp.server.audit_log.read_text()
    assert "audited plaintext" not in text and base64.b64encode(sealed).decode()[:24] not in text
