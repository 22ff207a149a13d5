"""AWS Signature Version 4: the server side check, held to botocore's own signer.

Server side only (clients sign with botocore itself through boto3), so it lives with the
server rather than in :mod:`kubekms.wire`, which stays free of the AWS SDK (an import contract
in pyproject.toml says so).

The client's request is rebuilt from exactly the headers it says it signed, its canonical
request, string to sign and signature are computed with the client's date and credential
scope, and the result is compared in constant time. So a request signed by boto3 (or any
SigV4 client signing the same headers) verifies here by the same canonical request and string
to sign that signed it.

The signing key (SigV4's HMAC chain over secret, date, region and service) is the same for
every request of one principal on one day in one region: :func:`signing_key` derives it once
and keeps it (botocore's signer derives it again for each request, four HMACs).

Every AWS SDK sends its JSON-wire requests to ``POST /`` without a query string. For that one
shape the canonical request is simple enough to build directly (:func:`canonical_post_root`:
method, ``/``, an empty query, the signed headers with their values trimmed, the body's
SHA-256), which costs a fifth of botocore's general builder (URL parsing, header maps); any
other target goes through botocore's. The tests hold the direct one to botocore's, byte for byte.
"""

from __future__ import annotations

import _hashlib
import functools
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import NamedTuple

from botocore.auth import SIGNED_HEADERS_BLACKLIST, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from kubekms.errors import Reason, Unauthenticated
from kubekms.wire import inputs
from kubekms.wire.aws_errors import InvalidSignature
from kubekms.wire.signing import parse_sdk_date

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "kms"
DATE_HEADER = "X-Amz-Date"
MAX_SKEW = timedelta(minutes=15)  # AWS's own window
# the Authorization header as every SDK writes it: no value holds "/", ",", "=", a space or a tab (the general
# parse strips both around a value); anything else (other spacing, order, duplicates, empty parts) goes through it.
# A value is printable ASCII but those (_SDK_VALUE): a match is printable ASCII, the header check's rule, without
# the check's own pass over the header (isprintable on its 200 characters, 1.2 µs)
_SDK_VALUE = r"([\x21-\x2b\x2d\x2e\x30-\x3c\x3e-\x7e]+)"
_SDK_AUTHORIZATION = re.compile(
    f"{ALGORITHM} Credential={_SDK_VALUE}/{_SDK_VALUE}/{_SDK_VALUE}/{_SDK_VALUE}/aws4_request,"
    f" ?SignedHeaders={_SDK_VALUE}, ?Signature={_SDK_VALUE}"
)
# what botocore can rebuild a URL from: a DNS name or IPv4, or a bracketed IPv6, and an optional port
HOST_PATTERN = re.compile(r"(?:[A-Za-z0-9._~-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")


@functools.lru_cache(maxsize=1024)  # a principal's key for a day and region; bounded, whatever scopes clients send
def signing_key(secret_key: str, date: str, region: str, service: str) -> bytes:
    """SigV4's derived signing key: HMAC-SHA256 chained over date, region, service and ``aws4_request``."""
    key = ("AWS4" + secret_key).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


@functools.lru_cache(maxsize=1024)  # as signing_key's
def _keyed_hmac(key: bytes) -> _hashlib.HMAC:
    """HMAC-SHA256 keyed with a signing key, to be copied per request: half of hmac.digest(), which sets the key
    up again each time. OpenSSL's own object, which hmac.HMAC wraps: its copy, update and hexdigest without
    hmac.HMAC's Python method around each."""
    return _hashlib.hmac_new(key, digestmod="sha256")


@functools.lru_cache(maxsize=64)  # the clients of one second send the same X-Amz-Date; bounded whatever they send
def _signing_time(amz_date: str) -> float:
    """``YYYYMMDDTHHMMSSZ`` (the same as SDK-HMAC's X-Sdk-Date) as epoch seconds; ValueError otherwise."""
    return parse_sdk_date(amz_date).timestamp()


@functools.lru_cache(maxsize=64)  # a client signs the same headers on every request; bounded whatever they send
def _check_signable(names: tuple[str, ...]) -> None:
    """SignedHeaders as AWS takes them: lower-case, sorted and signable."""
    unsignable = [name for name in names if name in SIGNED_HEADERS_BLACKLIST or name != name.lower()]
    if unsignable or list(names) != sorted(names):
        raise InvalidSignature("SignedHeaders must be lower-case, sorted and signable")


def _missing_auth(message: str) -> Unauthenticated:
    return Unauthenticated(message, reason=Reason.CREDENTIAL_MISSING)


class SigV4Authorization(NamedTuple):  # a tuple: a third of a frozen dataclass's construction, once per request
    access_key: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str

    @classmethod
    def parse(cls, headers: Mapping[str, str]) -> SigV4Authorization:
        value = headers.get("Authorization")  # checked by the SDK form's pattern; the general parse checks it
        sdk_form = _SDK_AUTHORIZATION.fullmatch(value) if value and len(value) <= inputs.MAX_HEADER_CHARS else None
        if sdk_form is not None:  # the general parse below would find the same fields, in three times the time
            access_key, date, region, service, names, signature = sdk_form.groups()
            return cls(access_key, date, region, service, tuple(names.split(";")), signature)
        return cls.parse_any_form(headers)

    @classmethod
    def parse_any_form(cls, headers: Mapping[str, str]) -> SigV4Authorization:
        """The general parse: any spacing and order of the fields, a precise error for each way to be wrong."""
        fields = {
            name: value.strip() for name, value in inputs.authorization(headers, ALGORITHM, error=_missing_auth).items()
        }
        credential, names, sig = fields.get("Credential"), fields.get("SignedHeaders"), fields.get("Signature")
        if not credential or not names or not sig:
            raise Unauthenticated(
                "Authorization needs Credential, SignedHeaders and Signature", reason=Reason.CREDENTIAL_MISSING
            )
        parts = credential.split("/")
        if len(parts) != 5 or parts[4] != "aws4_request" or not all(parts):
            raise Unauthenticated(
                "Credential must be ACCESS_KEY/YYYYMMDD/REGION/SERVICE/aws4_request", reason=Reason.CREDENTIAL_MISSING
            )
        return cls(parts[0], parts[1], parts[2], parts[3], tuple(names.split(";")), sig)


class _SignedRequest(AWSRequest):
    """An ``AWSRequest`` whose body is read as given: botocore's own prepares the whole request (headers and
    body copied) each time the signer reads its body, a third of the signature check's time."""

    @property
    def body(self) -> bytes:  # type: ignore[override]  # botocore-stubs say str; AWSRequest's own gives bytes
        data = self.data
        assert isinstance(data, bytes), "built from the request's bytes"
        return data


class VerifiedRequest(NamedTuple):
    access_key: str
    region: str


class SigV4Verifier:
    """``secret_for`` maps an access key to its secret key, or None when unknown."""

    def __init__(self, secret_for: Callable[[str], str | None], *, max_skew: timedelta = MAX_SKEW) -> None:
        self._secret_for = secret_for
        self._max_skew_seconds = max_skew.total_seconds()

    def verify(
        self,
        method: str,
        raw_path: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        now: datetime | None = None,
    ) -> VerifiedRequest:
        """``raw_path`` includes the query string; ``headers`` look up names case-insensitively."""
        authorization = SigV4Authorization.parse(headers)
        if authorization.service != SERVICE:
            raise InvalidSignature(f"credential scope names service {authorization.service!r}, not {SERVICE!r}")
        amz_date = inputs.header(headers, DATE_HEADER, error=_missing_auth) or ""
        try:
            signed_at = _signing_time(amz_date)
        except ValueError:
            raise Unauthenticated(f"{DATE_HEADER} must be YYYYMMDDTHHMMSSZ", reason=Reason.CREDENTIAL_MISSING) from None
        if amz_date[:8] != authorization.date:
            raise InvalidSignature("credential scope date does not match X-Amz-Date")
        if abs((time.time() if now is None else now.timestamp()) - signed_at) > self._max_skew_seconds:
            raise InvalidSignature("Signature expired: X-Amz-Date is outside the allowed clock skew")
        signed_names = authorization.signed_headers
        if "host" not in signed_names or DATE_HEADER.lower() not in signed_names:
            raise InvalidSignature("host and x-amz-date must be signed")
        if inputs.header(headers, "X-Amz-Security-Token", error=InvalidSignature):
            raise Unauthenticated("session tokens are not issued by this server")
        _check_signable(signed_names)
        signed_values: dict[str, str] = {}
        for name in signed_names:
            # X-Amz-Date was read and checked above
            value = amz_date if name == "x-amz-date" else inputs.header(headers, name, error=InvalidSignature)
            if value is None:
                raise InvalidSignature(f"signed header {name!r} is missing")
            signed_values[name] = value
        if HOST_PATTERN.fullmatch(signed_values["host"]) is None:
            raise InvalidSignature("the Host header must be host[:port]")
        claimed_digest = inputs.header(headers, "X-Amz-Content-SHA256", error=InvalidSignature)
        if claimed_digest is not None and claimed_digest != hashlib.sha256(body).hexdigest():
            raise InvalidSignature("X-Amz-Content-SHA256 does not match the body")
        # AWS: "the host header and any x-amz-* headers" are signed; unsigned, X-Amz-Target (the operation) could
        # be changed on a captured request. Every SDK signs them all.
        for name in headers:
            if name[:1] not in "xX":  # most headers: no lower-case copy of the name
                continue
            lowered = name.lower()
            if lowered.startswith("x-amz-") and lowered not in signed_values:
                raise InvalidSignature(f"header {name[:64]!r} must be signed, as host and every x-amz-* header")
        secret_key = self._secret_for(authorization.access_key)
        if secret_key is None:
            raise Unauthenticated("The security token included in the request is invalid.")
        if method == "POST" and raw_path == "/":
            canonical = canonical_post_root(signed_values, body)
        else:
            canonical = _botocore_canonical_request(method, raw_path, signed_values, body, authorization, secret_key)
        scope = f"{authorization.date}/{authorization.region}/{SERVICE}/aws4_request"
        to_sign = f"{ALGORITHM}\n{amz_date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        mac = _keyed_hmac(signing_key(secret_key, authorization.date, authorization.region, SERVICE)).copy()
        mac.update(to_sign.encode())
        expected = mac.hexdigest()
        if not hmac.compare_digest(expected, authorization.signature):
            raise InvalidSignature("The request signature we calculated does not match the signature you provided.")
        return VerifiedRequest(access_key=authorization.access_key, region=authorization.region)


def canonical_post_root(signed_values: Mapping[str, str], body: bytes) -> str:
    """SigV4's canonical request of ``POST /`` without a query, from its signed headers (lower-case names,
    sorted, one value each) and its body: the SDKs' JSON-wire request, as botocore's builder makes it."""
    # a list, not a generator: join makes a list of a generator first (0.7 µs)
    headers = "".join([f"{name}:{' '.join(value.split())}\n" for name, value in signed_values.items()])
    return f"POST\n/\n\n{headers}\n{';'.join(signed_values)}\n{hashlib.sha256(body).hexdigest()}"


def _botocore_canonical_request(
    method: str,
    raw_path: str,
    signed_values: Mapping[str, str],
    body: bytes,
    authorization: SigV4Authorization,
    secret_key: str,
) -> str:
    """Any other request's canonical request, by botocore's general builder (paths, query strings)."""
    url = f"http://{signed_values['host']}{raw_path}"
    request = _SignedRequest(method=method, url=url, headers=dict(signed_values), data=body)
    signer = SigV4Auth(BotoCredentials(authorization.access_key, secret_key), SERVICE, authorization.region)
    return signer.canonical_request(request)
