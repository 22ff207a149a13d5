"""Authentication of the Cloud KMS API: a service account's self-signed JWT, as Google's libraries send it.

``google.oauth2.service_account.Credentials`` with JWT access (the default of the generated
clients) signs a short-lived RS256 JWT with the service account's private key and sends it as
``authorization: Bearer <jwt>``; no token endpoint is involved. The server holds each
principal's public key (``gcp_service_account`` in the principals file) and accepts a token when:
the signature verifies under the key of the service account named by ``iss`` (= ``sub``);
``iat``/``exp`` are valid now (``google.auth.jwt.decode``, 30 s clock skew), so is ``nbf`` when
present, and the lifetime is at most one hour; the header carries no ``crit`` extension; and
either ``aud`` is one of the accepted audiences (by default ``https://cloudkms.googleapis.com/``,
what the client sends whatever its endpoint) or, for a scoped token without ``aud`` (AIP-4111; an
empty ``aud``, as Go's libraries send, counts as none), ``scope`` includes a Cloud KMS scope.

Clients that ask a token endpoint instead (OAuth's JWT-bearer grant, RFC 7523: Go's REST client, any
client whose key file's ``token_uri`` names the server's ``/token``) get the same JWT back as their
access token from :meth:`JwtVerifier.exchange` when its ``aud`` is one of ``token_audiences``; such a
token needs a Cloud KMS scope.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from google.auth import exceptions as auth_exceptions
from google.auth import jwt as google_jwt

from kubekms.errors import Unauthenticated
from kubekms.server.principals import PrincipalGrant, PrincipalsFileError

DEFAULT_AUDIENCES = ("https://cloudkms.googleapis.com/",)
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
KMS_SCOPES = frozenset({"https://www.googleapis.com/auth/cloudkms", "https://www.googleapis.com/auth/cloud-platform"})
CLOCK_SKEW_SECONDS = 30
MAX_LIFETIME_SECONDS = 3600
MAX_VERIFIED_CACHED = 4096  # tokens whose signature and claims were checked (about 225 us each), until they expire
MAX_TOKEN_CHARS = 4096  # an RS256 service-account JWT is about 800
BEARER = "bearer "


class GcpAccountError(PrincipalsFileError):
    """A principal's gcp_service_account public key is not an RSA public key in PEM."""


@dataclass(frozen=True)
class _Account:
    principal: PrincipalGrant
    public_key_pem: bytes


class AccessGrant(NamedTuple):
    """The token endpoint's answer: the access token, the seconds it lasts (at least 1), whose it is."""

    access_token: str
    expires_in: int
    principal: PrincipalGrant


# Google's token endpoint's words for an assertion outside its time frame
OUT_OF_TIMEFRAME = ("invalid_grant: Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable "
                    "timeframe. Check your iat and exp values in the JWT claim.")  # fmt: skip


class JwtVerifier:
    """Service-account email -> (principal, public key), built once from the principals."""

    def __init__(
        self,
        principals: Iterable[PrincipalGrant],
        audiences: Sequence[str] = DEFAULT_AUDIENCES,
        clock: Callable[[], float] = time.time,
        token_audiences: Sequence[str] = (),
    ) -> None:
        self._audiences = frozenset(audiences)
        self._token_audiences = frozenset(token_audiences)
        self._clock = clock
        # a client sends the same JWT until it nearly expires: remember the verified ones (token -> principal, exp)
        self._verified: dict[str, tuple[PrincipalGrant, int]] = {}
        self._accounts: dict[str, _Account] = {}
        for principal in principals:
            if not principal.gcp_service_account:
                continue
            pem = principal.gcp_public_key.encode()
            try:
                key = load_pem_public_key(pem)
            except ValueError:
                raise GcpAccountError(f"principal {principal.name!r}: gcp public_key is not a PEM public key") from None
            if not isinstance(key, rsa.RSAPublicKey) or key.key_size < 2048:
                raise GcpAccountError(f"principal {principal.name!r}: gcp public_key must be RSA of 2048 bits or more")
            if principal.gcp_service_account in self._accounts:
                raise GcpAccountError(f"service account {principal.gcp_service_account!r} is given twice")
            self._accounts[principal.gcp_service_account] = _Account(principal, pem)

    def __len__(self) -> int:
        return len(self._accounts)

    @property
    def token_audiences(self) -> frozenset[str]:
        return self._token_audiences

    def exchange(self, assertion: str) -> AccessGrant:
        """OAuth's JWT-bearer grant (RFC 7523) at the server's token endpoint.

        The assertion is the service account's JWT for a token endpoint (``aud`` one of ``token_audiences``,
        the key file's ``token_uri``) with a Cloud KMS scope. Its access token is the assertion itself, which
        :meth:`verify` accepts as a bearer for as long as it is valid: no state, so any worker process takes it.
        An assertion past its ``exp`` (still verified inside the clock-skew allowance) is refused as Google's
        endpoint refuses it: its token would answer ``expires_in`` 0, and a client would refresh in a loop.
        """
        principal = self._principal_of(assertion)
        claimed = google_jwt.decode(assertion, verify=False)  # type: ignore[no-untyped-call]  # google-auth: unannotated
        audience = claimed.get("aud")
        if not isinstance(audience, str) or audience not in self._token_audiences:
            raise Unauthenticated("invalid_grant: the assertion's aud is not this server's token endpoint.")
        expires_in = int(claimed["exp"]) - int(self._clock())
        if expires_in < 1:
            raise Unauthenticated(OUT_OF_TIMEFRAME)
        return AccessGrant(assertion, expires_in, principal)

    def verify(self, authorization: str | None) -> PrincipalGrant:
        """The principal of a valid ``authorization: Bearer <jwt>``; Unauthenticated otherwise."""
        if not authorization or not authorization[: len(BEARER)].lower() == BEARER:
            raise Unauthenticated("Request is missing required authentication credential (a Bearer JWT).")
        return self._principal_of(authorization[len(BEARER) :].strip())

    def _principal_of(self, token: str) -> PrincipalGrant:
        """The principal whose valid JWT ``token`` is; Unauthenticated otherwise."""
        if not token:
            raise Unauthenticated("Request is missing required authentication credential (a Bearer JWT).")
        if len(token) > MAX_TOKEN_CHARS or not token.isascii():
            raise Unauthenticated("Request had invalid authentication credentials: malformed JWT.")
        cached = self._verified.get(token)
        if cached is not None:
            principal, expires = cached
            if self._clock() <= expires + CLOCK_SKEW_SECONDS:
                return principal
            del self._verified[token]
            raise Unauthenticated("Request had invalid authentication credentials: JWT expired or not yet valid.")
        try:
            claimed = google_jwt.decode(token, verify=False)  # type: ignore[no-untyped-call]  # google-auth: unannotated
        except (ValueError, auth_exceptions.GoogleAuthError):
            raise Unauthenticated("Request had invalid authentication credentials: malformed JWT.") from None
        issuer = claimed.get("iss") if isinstance(claimed, dict) else None
        account = self._accounts.get(issuer) if isinstance(issuer, str) else None
        if account is None:
            raise Unauthenticated("Request had invalid authentication credentials: unknown service account.")
        if not all(type(claimed.get(claim)) is int for claim in ("iat", "exp")):  # bool is an int, but not a time
            # google-auth would add them to ints and raise TypeError
            raise Unauthenticated("Request had invalid authentication credentials: JWT iat and exp must be integers.")
        if "nbf" in claimed and type(claimed["nbf"]) is not int:  # google-auth ignores nbf: checked below
            raise Unauthenticated("Request had invalid authentication credentials: JWT nbf must be an integer.")
        header = google_jwt.decode_header(token)  # type: ignore[no-untyped-call]  # google-auth: unannotated
        if not isinstance(header, dict) or "crit" in header:  # RFC 7515 4.1.11: no extension is understood here
            raise Unauthenticated("Request had invalid authentication credentials: JWT crit header not supported.")
        try:
            payload = google_jwt.decode(  # type: ignore[no-untyped-call]  # google-auth: unannotated
                token, certs=account.public_key_pem, clock_skew_in_seconds=CLOCK_SKEW_SECONDS
            )
        except (ValueError, auth_exceptions.GoogleAuthError) as error:
            reason = "expired or not yet valid" if "expired" in str(error) or "early" in str(error) else "not verified"
            raise Unauthenticated(f"Request had invalid authentication credentials: JWT {reason}.") from None
        self._check_claims(payload, account)
        if len(self._verified) >= MAX_VERIFIED_CACHED:
            del self._verified[next(iter(self._verified))]  # the oldest entry
        self._verified[token] = (account.principal, int(payload["exp"]))
        return account.principal

    def _check_claims(self, payload: dict[str, object], account: _Account) -> None:
        not_before = payload.get("nbf")
        if isinstance(not_before, int) and not_before > self._clock() + CLOCK_SKEW_SECONDS:
            raise Unauthenticated("Request had invalid authentication credentials: JWT expired or not yet valid.")
        issued, expires = payload.get("iat"), payload.get("exp")
        if not isinstance(issued, int) or not isinstance(expires, int) or expires - issued > MAX_LIFETIME_SECONDS:
            raise Unauthenticated("Request had invalid authentication credentials: JWT lifetime over one hour.")
        if payload.get("sub", payload.get("iss")) != payload.get("iss"):
            raise Unauthenticated("Request had invalid authentication credentials: JWT sub differs from iss.")
        audience = payload.get("aud")
        # Go's scoped self-signed JWT sends "aud": "" (its claim set has no omitempty): no audience, the scope decides;
        # so does the token endpoint's audience (an access token from exchange(), which needs a Cloud KMS scope)
        if audience is not None and not isinstance(audience, str):  # RFC 7519 allows an array: not taken here
            raise Unauthenticated("Request had invalid authentication credentials: JWT audience not accepted.")
        if audience is not None and audience != "" and audience not in self._token_audiences:
            if audience not in self._audiences:
                raise Unauthenticated("Request had invalid authentication credentials: JWT audience not accepted.")
            return
        scope = payload.get("scope")
        if not isinstance(scope, str) or KMS_SCOPES.isdisjoint(scope.split()):
            raise Unauthenticated("Request had invalid authentication credentials: JWT has no audience or KMS scope.")


def new_service_account_key(client_email: str, project_id: str) -> tuple[dict[str, str], str]:
    """A fresh RSA-2048 key pair: (the service-account key JSON for the client, the public key PEM for the server).

    The JSON is the format ``google.oauth2.service_account.Credentials.from_service_account_info``
    reads; its ``token_uri`` is never called with JWT access.
    """
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    key_json = {
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": secrets.token_hex(20),
        "private_key": private_pem,
        "client_email": client_email,
        "client_id": str(secrets.randbelow(10**20)),
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    return key_json, public_pem
