"""JwtVerifier without a server: the cache of verified tokens never outlives a token, and stays bounded."""

from __future__ import annotations

import time

import pytest
from google.auth import crypt
from google.auth import jwt as google_jwt

from kubekms.errors import Unauthenticated
from kubekms.server import gcp_auth
from kubekms.server.gcp_auth import CLOCK_SKEW_SECONDS, GcpAccountError, JwtVerifier, new_service_account_key
from kubekms.server.principals import PrincipalGrant

EMAIL = "unit@proj.iam.gserviceaccount.com"


def _token(info: dict[str, str], now: int, lifetime: int = 60, **claims: object) -> str:
    payload = {"iss": EMAIL, "sub": EMAIL, "aud": gcp_auth.DEFAULT_AUDIENCES[0], "iat": now, "exp": now + lifetime}
    return google_jwt.encode(crypt.RSASigner.from_service_account_info(info), {**payload, **claims}).decode()


def test_a_cached_token_is_refused_once_it_expires() -> None:
    info, public_pem = new_service_account_key(EMAIL, "proj")
    principal = PrincipalGrant.build("unit", "AK", "SK", gcp_service_account=(EMAIL, public_pem))
    now = [time.time()]
    verifier = JwtVerifier([principal], clock=lambda: now[0])
    token = _token(info, int(now[0]))
    assert verifier.verify(f"Bearer {token}") is principal
    assert verifier.verify(f"bearer {token}") is principal  # from the cache
    now[0] += 60 + CLOCK_SKEW_SECONDS + 1
    with pytest.raises(Unauthenticated, match="expired"):
        verifier.verify(f"Bearer {token}")


def test_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gcp_auth, "MAX_VERIFIED_CACHED", 3)
    info, public_pem = new_service_account_key(EMAIL, "proj")
    verifier = JwtVerifier([PrincipalGrant.build("unit", "AK", "SK", gcp_service_account=(EMAIL, public_pem))])
    now = int(time.time())
    for index in range(10):
        verifier.verify(f"Bearer {_token(info, now, jti=str(index))}")
    assert len(verifier._verified) == 3


def test_unusable_public_keys_stop_the_start() -> None:
    _, public_pem = new_service_account_key(EMAIL, "proj")
    for bad in ("not a pem", public_pem.replace("MII", "XXX")):
        with pytest.raises(GcpAccountError):
            JwtVerifier([PrincipalGrant.build("unit", "AK", "SK", gcp_service_account=(EMAIL, bad))])
    twice = [PrincipalGrant.build(name, name, "SK", gcp_service_account=(EMAIL, public_pem)) for name in ("a", "b")]
    with pytest.raises(GcpAccountError, match="twice"):
        JwtVerifier(twice)


def test_an_empty_audience_with_a_kms_scope_is_a_scoped_token() -> None:
    """Go's self-signed JWT with scopes (cloud.google.com/go/auth, golang.org/x/oauth2/jws) carries ``"aud": ""``:
    its claim set's aud has no omitempty. An empty aud names no audience, so the scope decides."""
    info, public_pem = new_service_account_key(EMAIL, "proj")
    principal = PrincipalGrant.build("unit", "AK", "SK", gcp_service_account=(EMAIL, public_pem))
    verifier = JwtVerifier([principal])
    now = int(time.time())
    scoped = _token(info, now, aud="", scope="https://www.googleapis.com/auth/cloud-platform")
    assert verifier.verify(f"Bearer {scoped}") is principal
    for claims in (
        {"aud": ""},
        {"aud": "", "scope": "https://www.googleapis.com/auth/devstorage"},
        {"aud": "https://storage.googleapis.com/", "scope": "https://www.googleapis.com/auth/cloudkms"},
    ):
        with pytest.raises(Unauthenticated):
            verifier.verify(f"Bearer {_token(info, now, **claims)}")


TOKEN_URI = "https://kms.example:9444/token"
SCOPE = "https://www.googleapis.com/auth/cloudkms"


def test_the_token_endpoint_exchanges_a_scoped_assertion_for_an_access_token() -> None:
    """Clients that use OAuth's JWT-bearer grant (Go's REST client, any key file whose token_uri is the server's)
    sign an assertion with aud = token_uri and a scope; the access token answered is accepted as a bearer."""
    info, public_pem = new_service_account_key(EMAIL, "proj")
    principal = PrincipalGrant.build("unit", "AK", "SK", gcp_service_account=(EMAIL, public_pem))
    now = int(time.time())
    verifier = JwtVerifier([principal], token_audiences=(TOKEN_URI,), clock=lambda: now)
    access_token, expires_in, _ = verifier.exchange(_token(info, now, lifetime=3600, aud=TOKEN_URI, scope=SCOPE))
    assert expires_in == 3600 and verifier.verify(f"Bearer {access_token}") is principal
    for claims in ({"aud": TOKEN_URI}, {"aud": TOKEN_URI, "scope": "https://www.googleapis.com/auth/devstorage"},
                   {"aud": "https://oauth2.googleapis.com/token", "scope": SCOPE},
                   {"aud": gcp_auth.DEFAULT_AUDIENCES[0], "scope": SCOPE}, {"aud": "", "scope": SCOPE}):  # fmt: skip
        with pytest.raises(Unauthenticated):
            verifier.exchange(_token(info, now, **claims))
    with pytest.raises(Unauthenticated):
        verifier.verify(f"Bearer {_token(info, now, aud=TOKEN_URI)}")  # no scope: not a bearer either
    with pytest.raises(Unauthenticated):
        JwtVerifier([principal], clock=lambda: now).exchange(_token(info, now, aud=TOKEN_URI, scope=SCOPE))


def test_an_aud_that_is_not_a_string_is_unauthenticated_not_an_error() -> None:
    """RFC 7519 allows an array aud; this server takes a string only, and an unhashable one must not raise
    TypeError (an INTERNAL answer) in the token audiences' set lookup."""
    info, public_pem = new_service_account_key(EMAIL, "proj")
    principal = PrincipalGrant.build("unit", "AK", "SK", gcp_service_account=(EMAIL, public_pem))
    now = int(time.time())
    verifier = JwtVerifier([principal], token_audiences=(TOKEN_URI,), clock=lambda: now)
    for audience in ([gcp_auth.DEFAULT_AUDIENCES[0]], {"aud": TOKEN_URI}, [TOKEN_URI], 7):
        token = _token(info, now, aud=audience, scope=SCOPE)
        with pytest.raises(Unauthenticated):
            verifier.verify(f"Bearer {token}")
        with pytest.raises(Unauthenticated):
            verifier.exchange(token)
