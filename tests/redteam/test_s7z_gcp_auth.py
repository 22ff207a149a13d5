"""Red team (H14) of the Cloud KMS bearer JWTs: header and claim tricks a signed token can still carry."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import pytest
from google.auth import crypt
from google.auth import jwt as google_jwt

from kubekms.errors import Unauthenticated
from kubekms.server.gcp_auth import CLOCK_SKEW_SECONDS, DEFAULT_AUDIENCES, JwtVerifier, new_service_account_key
from kubekms.server.principals import PrincipalGrant

EMAIL = "h14@proj.iam.gserviceaccount.com"
INFO, PUBLIC_PEM = new_service_account_key(EMAIL, "proj")


def verifier() -> JwtVerifier:
    return JwtVerifier([PrincipalGrant.build("h14", "AK", "SK", gcp_service_account=(EMAIL, PUBLIC_PEM))])


def claims(**changes: object) -> dict[str, object]:
    now = int(time.time())
    return {"iss": EMAIL, "sub": EMAIL, "aud": DEFAULT_AUDIENCES[0], "iat": now, "exp": now + 600, **changes}


def signed(payload: dict[str, object], header: dict[str, object] | None = None) -> str:
    return google_jwt.encode(crypt.RSASigner.from_service_account_info(INFO), payload, header=header).decode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_a_token_used_before_its_nbf_is_refused() -> None:
    early = signed(claims(nbf=int(time.time()) + 10 * CLOCK_SKEW_SECONDS))
    with pytest.raises(Unauthenticated, match="not yet valid"):
        verifier().verify(f"Bearer {early}")
    within_skew = signed(claims(nbf=int(time.time()) + CLOCK_SKEW_SECONDS // 2))
    assert verifier().verify(f"Bearer {within_skew}").name == "h14"


@pytest.mark.parametrize("nbf", ["soon", 1.5, True, None])
def test_an_nbf_that_is_not_an_integer_is_refused(nbf: object) -> None:
    with pytest.raises(Unauthenticated, match="nbf"):
        verifier().verify(f"Bearer {signed(claims(nbf=nbf))}")


def test_a_critical_header_extension_the_server_does_not_know_is_refused() -> None:
    # RFC 7515 4.1.11: a recipient that does not understand a "crit" extension must reject the JWS
    token = signed(claims(), header={"crit": ["b64"], "b64": False})
    with pytest.raises(Unauthenticated, match="crit"):
        verifier().verify(f"Bearer {token}")


@pytest.mark.parametrize("algorithm", ["none", "HS256", "ES256", "rs256"])
def test_algorithm_confusion_is_refused(algorithm: str) -> None:
    header = _b64(json.dumps({"alg": algorithm, "typ": "JWT"}).encode())
    payload = _b64(json.dumps(claims()).encode())
    signing_input = f"{header}.{payload}"
    # HS256 keyed with the public key the server holds: the classic RS/HS confusion
    mac = hmac.new(PUBLIC_PEM.encode(), signing_input.encode(), hashlib.sha256).digest()
    with pytest.raises(Unauthenticated, match="not verified"):
        verifier().verify(f"Bearer {signing_input}.{_b64(mac) if algorithm != 'none' else ''}")
