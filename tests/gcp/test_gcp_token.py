"""The token endpoint (``gcp.token_uri``): key files whose token_uri is the server's ``/token``.

google-auth's service-account credentials with scopes and without JWT access do what Go's REST client and
most OAuth clients do: post a JWT-bearer assertion to the key file's token_uri, then send the access token.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import google.auth.credentials
import google.auth.transport.requests
import pytest
import yaml
from gcp_harness import LOCATION, PROJECT, kms_client
from google.api_core import exceptions
from google.auth import crypt
from google.auth import jwt as google_jwt
from google.oauth2 import service_account

from kubekms.devenv.gcpserver import GcpServer, gcp_server
from kubekms.server.gcp_auth import GOOGLE_TOKEN_URI
from kubekms.server.gcp_settings import GcpSettings

SCOPE = "https://www.googleapis.com/auth/cloudkms"


@pytest.fixture(scope="module")
def gcp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcpServer]:
    with gcp_server(tmp_path_factory.mktemp("kms-token"), project_id=PROJECT) as running:
        running.server.stop()  # again with the token endpoint: the devenv config has none
        config_path = running.server.state_dir / "server.yaml"
        config = yaml.safe_load(config_path.read_text())
        config["gcp"]["token_uri"] = f"{running.rest_endpoint}/token"
        config_path.write_text(yaml.safe_dump(config))
        running.server.start()
        # no wait for the Cloud KMS listeners: start() returns on /healthz, answered only once they are up too
        yield running


def _oauth_credentials(gcp: GcpServer, **overrides: Any) -> service_account.Credentials:
    info = {**gcp.service_account_info("admin"), "token_uri": f"{gcp.rest_endpoint}/token", **overrides}
    return service_account.Credentials.from_service_account_info(info, scopes=[SCOPE])


def test_an_access_token_from_the_token_endpoint_is_a_bearer(gcp: GcpServer) -> None:
    credentials = _oauth_credentials(gcp)
    credentials.refresh(google.auth.transport.requests.Request())  # the JWT-bearer grant at token_uri
    assert credentials.token and credentials.expiry is not None
    rest = kms_client(gcp.endpoint, credentials)
    rest.create_key_ring(request={"parent": LOCATION, "key_ring_id": "token"})
    assert [ring.name for ring in rest.list_key_rings(request={"parent": LOCATION})] == [f"{LOCATION}/keyRings/token"]


def _assertion(gcp: GcpServer, audience: str) -> str:
    """The assertion Go's oauth2 (golang.org/x/oauth2/jwt) signs for a key file: aud = its token_uri."""
    info = gcp.service_account_info("admin")
    now = int(time.time())
    claims = {"iss": info["client_email"], "scope": SCOPE, "aud": audience, "iat": now, "exp": now + 3600}
    return google_jwt.encode(crypt.RSASigner.from_service_account_info(info), claims).decode()


def test_the_assertion_go_signs_for_the_token_uri(gcp: GcpServer) -> None:
    code, answer = _post(gcp, {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                               "assertion": _assertion(gcp, f"{gcp.rest_endpoint}/token")})  # fmt: skip
    assert code == 200 and answer["token_type"] == "Bearer" and 3500 < answer["expires_in"] <= 3600, answer
    kms_client(gcp.endpoint, _BearerOnly(answer["access_token"])).list_key_rings(request={"parent": LOCATION})


def _post(gcp: GcpServer, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(f"{gcp.rest_endpoint}/token", data=urllib.parse.urlencode(form).encode())
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_refusals_are_oauth_errors(gcp: GcpServer) -> None:
    bearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"
    assert _post(gcp, {"grant_type": "client_credentials"}) == (400, {
        "error": "unsupported_grant_type", "error_description": f"grant_type must be {bearer}"})  # fmt: skip
    assert _post(gcp, {"grant_type": bearer})[1]["error"] == "invalid_request"
    code, answer = _post(gcp, {"grant_type": bearer, "assertion": "not.a.jwt"})
    assert (code, answer["error"]) == (400, "invalid_grant")
    # an assertion for another token endpoint is not exchanged here (google-auth's aud is always Google's: Go's)
    assertion = _assertion(gcp, "https://sts.example/token")
    code, answer = _post(gcp, {"grant_type": bearer, "assertion": assertion})
    assert (code, answer["error"]) == (400, "invalid_grant") and assertion not in json.dumps(answer)
    with pytest.raises(exceptions.Unauthenticated):  # nor is it a bearer itself
        kms_client(gcp.endpoint, _BearerOnly(assertion)).list_key_rings(request={"parent": LOCATION})


class _BearerOnly(google.auth.credentials.Credentials):  # type: ignore[misc]
    """Sends a given string as the bearer token (what a client that got it from a token endpoint would do)."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def refresh(self, request: Any) -> None:
        pass

    @property
    def expired(self) -> bool:
        return False


def test_the_token_uri_setting() -> None:
    rest = {"listen": "127.0.0.1:1", "rest_listen": "127.0.0.1:2"}
    assert GcpSettings.from_config(rest).token_audiences == ()  # type: ignore[union-attr]
    settings = GcpSettings.from_config({**rest, "token_uri": "https://kms.internal:2/token"})
    assert settings is not None and settings.token_audiences == ("https://kms.internal:2/token", GOOGLE_TOKEN_URI)
    without_rest = {"listen": "127.0.0.1:1", "token_uri": "https://kms.internal:2/token"}
    for bad, why in ((without_rest, "rest_listen"), ({**rest, "token_uri": "kms/token"}, "URL"),
                     ({**rest, "token_uri": 7}, "URL")):  # fmt: skip
        with pytest.raises(ValueError, match=why):
            GcpSettings.from_config(bad)


def test_token_refusals_go_to_the_rate_limited_refusal_log(gcp: GcpServer) -> None:
    """A client posting bad assertions gets a few log lines (the refusal log's burst), then only a count: the
    endpoint cannot be used to flood the server's log."""
    bearer = "urn:ietf:params:oauth:grant-type:jwt-bearer"
    for _ in range(12):  # past the log's burst of 5, short of the endpoint's 20 failures (then 429, its own test)
        assert _post(gcp, {"grant_type": bearer, "assertion": "not.a.jwt"})[0] == 400
    lines = [json.loads(line) for line in gcp.server.log.read_text().splitlines() if line.startswith("{")]
    token_lines = [line for line in lines if line.get("wire") == "gcp-token"]
    assert 1 <= len(token_lines) <= 5 and all(line["operation"] == "Token" for line in token_lines)
    assert all("not.a.jwt" not in json.dumps(line) for line in token_lines)


def test_an_oversized_token_request_is_refused_without_echo(gcp: GcpServer) -> None:
    code, answer = _post(gcp, {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": "a" * 300_000})
    assert (code, answer["error"]) == (400, "invalid_request") and "aaaa" not in json.dumps(answer)
