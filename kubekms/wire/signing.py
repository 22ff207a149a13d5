"""SDK-HMAC-SHA256 request signing (AK/SK) as the Huawei Cloud SDKs do it, both sides.

The client signs with :func:`sign_headers`; the server checks with :class:`SignatureVerifier`.
Both build the same canonical request (:func:`canonical_request`), so a signature made by
``huaweicloudsdkcore`` verifies here and ours equals the SDK's for the same request.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from kubekms.credentials import Credentials
from kubekms.errors import Unauthenticated
from kubekms.wire import inputs

ALGORITHM = "SDK-HMAC-SHA256"
DATE_HEADER = "X-Sdk-Date"
DATE_FORMAT = "%Y%m%dT%H%M%SZ"
SECURITY_TOKEN_HEADER = "X-Security-Token"
EMPTY_BODY_SHA256 = hashlib.sha256(b"").hexdigest()
DEFAULT_MAX_SKEW = timedelta(minutes=15)

# Wire codes for signature failures (HTTP 401): KMS.0301 no/invalid credential header,
# KMS.0302 signature or key does not match, KMS.0303 date outside the window.
MISSING_AUTH_CODE = "KMS.0301"
BAD_SIGNATURE_CODE = "KMS.0302"
STALE_DATE_CODE = "KMS.0303"
# one message for an unknown access key and a wrong signature: callers cannot probe for valid access keys
_SIGNATURE_MISMATCH = "the request signature does not match (unknown access key or wrong secret key)"


def _missing_auth(message: str) -> Unauthenticated:
    return Unauthenticated(message, code=MISSING_AUTH_CODE)


def _bad_signature(message: str) -> Unauthenticated:
    return Unauthenticated(message, code=BAD_SIGNATURE_CODE)


def _quote(text: str) -> str:
    return quote(text, safe="~")


@functools.lru_cache(maxsize=4096)  # a server sees few distinct paths; quoting each segment per request is costly
def canonical_uri(path: str) -> str:
    """Each segment of the decoded path percent-quoted (safe ``~``), always ending in ``/``."""
    uri = "/".join(_quote(segment) for segment in unquote(path).split("/"))
    return uri if uri.endswith("/") else uri + "/"


def canonical_query(pairs: Sequence[tuple[str, str]]) -> str:
    if not pairs:
        return ""
    return "&".join(f"{_quote(key)}={_quote(value)}" for key, value in sorted(pairs))


def signed_header_names(header_names: Iterable[str]) -> list[str]:
    """The headers the SDK signs: every name without ``_``, lower-cased and sorted."""
    return sorted(name.lower() for name in header_names if "_" not in name)


def canonical_request(
    method: str,
    path: str,
    query: Sequence[tuple[str, str]],
    headers: Mapping[str, str],
    signed_headers: Sequence[str],
    body_sha256: str,
) -> str:
    """``headers`` must be keyed by lower-case name; every signed header must be present."""
    header_lines = "".join(f"{name}:{headers[name].strip()}\n" for name in signed_headers)
    return "\n".join(
        (
            method.upper(),
            canonical_uri(path),
            canonical_query(query),
            header_lines,
            ";".join(signed_headers),
            body_sha256,
        )
    )


def string_to_sign(sdk_date: str, canonical: str) -> str:
    return f"{ALGORITHM}\n{sdk_date}\n{hashlib.sha256(canonical.encode()).hexdigest()}"


def signature(secret_key: str, to_sign: str) -> str:
    return hmac.new(secret_key.encode(), to_sign.encode(), hashlib.sha256).hexdigest()


_SDK_DATE_PATTERN = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})T([0-9]{2})([0-9]{2})([0-9]{2})Z")


@functools.lru_cache(maxsize=256)  # requests signed within the same second share their date: parse once
def parse_sdk_date(value: str) -> datetime:
    """``YYYYMMDDTHHMMSSZ`` as an aware UTC datetime; ValueError otherwise (strptime is too slow per request)."""
    match = _SDK_DATE_PATTERN.fullmatch(value)
    if match is None:
        raise ValueError(value)
    year, month, day, hour, minute, second = (int(part) for part in match.groups())
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def body_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest() if body else EMPTY_BODY_SHA256


def sign_headers(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    credentials: Credentials,
    now: datetime | None = None,
) -> dict[str, str]:
    """Return ``headers`` plus ``Host``, ``X-Sdk-Date``, ``X-Security-Token`` (if any) and ``Authorization``.

    Send exactly the returned headers (the ``Host`` among them) with exactly ``body``.
    """
    parts = urlsplit(url)
    signed = dict(headers)
    lower_names = {name.lower() for name in signed}
    if "host" not in lower_names:
        signed["Host"] = parts.netloc
    if DATE_HEADER.lower() not in lower_names:
        signed[DATE_HEADER] = (now or datetime.now(UTC)).strftime(DATE_FORMAT)
    if credentials.security_token and SECURITY_TOKEN_HEADER.lower() not in lower_names:
        signed[SECURITY_TOKEN_HEADER] = credentials.security_token
    signed.pop("Authorization", None)
    by_lower_name = {name.lower(): str(value) for name, value in signed.items()}
    names = signed_header_names(signed)
    canonical = canonical_request(
        method,
        parts.path or "/",
        parse_qsl(parts.query, keep_blank_values=True),
        by_lower_name,
        names,
        body_digest(body),
    )
    sdk_date = by_lower_name[DATE_HEADER.lower()]
    value = signature(credentials.secret_key, string_to_sign(sdk_date, canonical))
    signed["Authorization"] = (
        f"{ALGORITHM} Access={credentials.access_key}, SignedHeaders={';'.join(names)}, Signature={value}"
    )
    return signed


@dataclass(frozen=True)
class AuthorizationHeader:
    access_key: str
    signed_headers: tuple[str, ...]
    signature: str

    @classmethod
    def parse(cls, headers: Mapping[str, str]) -> AuthorizationHeader:
        fields = inputs.authorization(headers, ALGORITHM, error=_missing_auth)
        access_key, names, sig = fields.get("Access"), fields.get("SignedHeaders"), fields.get("Signature")
        if not access_key or not names or not sig:
            raise Unauthenticated("Authorization needs Access, SignedHeaders and Signature", code=MISSING_AUTH_CODE)
        return cls(access_key=access_key, signed_headers=tuple(names.split(";")), signature=sig)


class SignatureVerifier:
    """Checks a request's AK/SK signature; ``secret_for`` maps an access key to its secret (or None)."""

    def __init__(self, secret_for: Callable[[str], str | None], *, max_skew: timedelta = DEFAULT_MAX_SKEW) -> None:
        self._secret_for = secret_for
        self._max_skew = max_skew

    def verify(
        self,
        method: str,
        path: str,
        query_string: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        now: datetime | None = None,
    ) -> str:
        """Return the access key that signed the request; raise :class:`Unauthenticated` otherwise.

        ``headers`` must look up names case-insensitively (aiohttp's CIMultiDict does).
        """
        authorization = AuthorizationHeader.parse(headers)
        sdk_date = inputs.header(headers, DATE_HEADER, error=_missing_auth)
        if not sdk_date:
            raise Unauthenticated(f"missing {DATE_HEADER} header", code=MISSING_AUTH_CODE)
        try:
            signed_at = parse_sdk_date(sdk_date)
        except ValueError:
            raise Unauthenticated(f"{DATE_HEADER} must be YYYYMMDDTHHMMSSZ", code=MISSING_AUTH_CODE) from None
        if abs((now or datetime.now(UTC)) - signed_at) > self._max_skew:
            raise Unauthenticated(f"{DATE_HEADER} is outside the allowed clock skew", code=STALE_DATE_CODE)
        if DATE_HEADER.lower() not in authorization.signed_headers:
            raise Unauthenticated(f"{DATE_HEADER} must be signed", code=MISSING_AUTH_CODE)
        signed_values: dict[str, str] = {}
        for name in authorization.signed_headers:
            value = inputs.header(headers, name, error=_bad_signature)
            if value is None:
                raise Unauthenticated(f"signed header {name!r} is missing", code=BAD_SIGNATURE_CODE)
            signed_values[name] = value
        secret_key = self._secret_for(authorization.access_key)
        if secret_key is None:
            raise Unauthenticated(_SIGNATURE_MISMATCH, code=BAD_SIGNATURE_CODE)
        canonical = canonical_request(
            method,
            path,
            parse_qsl(query_string, keep_blank_values=True) if query_string else (),
            signed_values,
            authorization.signed_headers,
            body_digest(body),
        )
        expected = signature(secret_key, string_to_sign(sdk_date, canonical))
        if not hmac.compare_digest(expected, authorization.signature):
            raise Unauthenticated(_SIGNATURE_MISMATCH, code=BAD_SIGNATURE_CODE)
        return authorization.access_key
