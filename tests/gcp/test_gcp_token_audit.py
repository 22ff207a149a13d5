"""The token endpoint (``POST /token``) audits every exchange (never the assertion or the token), stops checking the
assertions of a client with too many refused ones, and never hands out a token that is already expired."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from gcp_harness import PROJECT
from google.auth import crypt
from google.auth import jwt as google_jwt

from kubekms.devenv.gcpserver import GcpServer, gcp_server
from kubekms.errors import Unauthenticated
from kubekms.server.gcp_auth import JwtVerifier, new_service_account_key
from kubekms.server.gcp_token import TokenFailures
from kubekms.server.principals import PrincipalGrant

SCOPE = "https://www.googleapis.com/auth/cloudkms"
BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@pytest.fixture(scope="module")
def gcp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcpServer]:
    with gcp_server(tmp_path_factory.mktemp("token-audit"), project_id=PROJECT) as running:
        running.server.stop()  # again with the token endpoint: the devenv config has none
        config_path = running.server.state_dir / "server.yaml"
        config = yaml.safe_load(config_path.read_text())
        config["gcp"]["token_uri"] = f"{running.rest_endpoint}/token"
        config_path.write_text(yaml.safe_dump(config))
        running.server.start()
        # no wait for the Cloud KMS listeners: start() returns on /healthz, answered only once they are up too
        yield running


def _assertion(info: dict[str, str], audience: str, *, issued: int, lifetime: int = 3600) -> str:
    claims = {"iss": info["client_email"], "scope": SCOPE, "aud": audience, "iat": issued, "exp": issued + lifetime}
    return google_jwt.encode(crypt.RSASigner.from_service_account_info(info), claims).decode()


def _post(gcp: GcpServer, assertion: str) -> tuple[int, dict[str, Any], str | None]:
    form = urllib.parse.urlencode({"grant_type": BEARER, "assertion": assertion}).encode()
    request = urllib.request.Request(f"{gcp.rest_endpoint}/token", data=form)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read()), answer.headers.get("Retry-After")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), error.headers.get("Retry-After")


def _token_records(gcp: GcpServer, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    while True:  # the audit buffer is written on a timer
        lines = gcp.server.audit_log.read_text().splitlines()
        records = [record for record in map(json.loads, lines) if record["operation"] == "gcp:Token"]
        if len(records) >= count:
            return records
        assert time.monotonic() < deadline, records
        time.sleep(0.05)


def test_exchanges_are_audited_then_a_client_refused_too_often_is_throttled(gcp: GcpServer) -> None:
    info, token_uri = gcp.service_account_info("admin"), f"{gcp.rest_endpoint}/token"
    good = _assertion(info, token_uri, issued=int(time.time()))
    code, answer, _ = _post(gcp, good)
    assert code == 200, answer
    code, _, _ = _post(gcp, "not.a.jwt")
    assert code == 400
    first = _token_records(gcp, 2)
    assert [(r["principal"], r["result"], r["status"]) for r in first] == [("admin", "OK", 200), ("-", "KMS.0302", 400)]
    for _ in range(19):  # 20 refused in the window
        assert _post(gcp, "not.a.jwt")[0] == 400
    code, answer, retry_after = _post(gcp, good)  # a good assertion too: not checked while the client is throttled
    assert code == 429 and answer["error"] == "rate_limit_exceeded", answer
    assert retry_after is not None and 1 <= int(retry_after) <= 300
    records = _token_records(gcp, 22)
    assert (records[-1]["principal"], records[-1]["status"], records[-1]["result"]) == ("-", 429, "KMS.0105")
    text = gcp.server.audit_log.read_text()
    assert good[-40:] not in text and answer.get("access_token") is None


def test_failures_are_counted_per_client_in_a_sliding_window() -> None:
    now = [1000.0]
    failures = TokenFailures(failures=3, window=60.0, clock=lambda: now[0])
    for _ in range(3):
        assert failures.retry_after("a") == 0
        failures.failed("a")
        now[0] += 1
    assert failures.retry_after("a") == pytest.approx(57.0) and failures.retry_after("b") == 0
    now[0] = 1060.5  # the first failure left the window
    assert failures.retry_after("a") == 0
    bounded = TokenFailures(failures=1, window=60.0, max_clients=2, clock=lambda: now[0])
    for client in ("a", "b", "c"):
        bounded.failed(client)
    assert bounded.retry_after("a") == 0 and bounded.retry_after("c") > 0  # the least recent forgotten


def test_an_assertion_past_its_exp_is_not_exchanged_inside_the_clock_skew_allowance() -> None:
    """The signature and times still verify (30 s skew) but the token would answer expires_in 0: refused as
    Google's endpoint refuses it, not handed out expired."""
    email, token_uri = "sa@proj.iam.gserviceaccount.com", "https://kms.internal/token"
    info, public_pem = new_service_account_key(email, "proj")
    principal = PrincipalGrant.build("unit", "AK", "SK", gcp_service_account=(email, public_pem))
    now = int(time.time())
    verifier = JwtVerifier([principal], token_audiences=(token_uri,), clock=lambda: now)
    with pytest.raises(Unauthenticated, match="reasonable timeframe"):
        verifier.exchange(_assertion(info, token_uri, issued=now - 3610))  # exp 10 s ago
    grant = verifier.exchange(_assertion(info, token_uri, issued=now - 3599))
    assert grant.expires_in == 1 and grant.principal is principal
