"""SDK-HMAC-SHA256: ours against the real huaweicloudsdkcore signer, and the verifier's refusals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from multidict import CIMultiDict

from kubekms.errors import Unauthenticated
from kubekms.providers import Credentials
from kubekms.wire.signing import DATE_FORMAT, SignatureVerifier, sign_headers

AK, SK = "AKTESTKEY0001", "sk-test-secret-0001"
NOW = datetime(2026, 11, 28, 8, 0, 0, tzinfo=UTC)


def sdk_signed(method: str, url: str, body: bytes, query: list[tuple[str, object]] | None = None) -> dict[str, str]:
    """Let the real SDK sign a request the way KmsClient does (BasicCredentials with project id)."""
    parts = urlsplit(url)
    request = SdkRequest(
        method=method,
        schema=parts.scheme,
        host=parts.netloc,
        resource_path=parts.path,
        query_params=query or [],
        header_params={
            "Content-Type": "application/json;charset=UTF-8",
            "User-Agent": "huaweicloud-usdk-python/3.0",
            "X-Sdk-Date": NOW.strftime(DATE_FORMAT),
        },
        body=body,
    )
    BasicCredentials(AK, SK, "proj1").sign_request(request)
    return dict(request.header_params)


CASES = [
    ("POST", "http://127.0.0.1:8443/v1.0/proj1/kms/create-datakey", b'{"key_id": "k1", "key_spec": "AES_256"}', None),
    ("GET", "http://127.0.0.1:8443/v1.0/proj1/kms/user-instances", b"", None),
    ("GET", "https://kms.example.com/v1.0/proj1/kms/aliases", b"", [("limit", 10), ("key_id", "a b~c/d")]),
    ("POST", "http://[::1]:9000/v1.0/proj1/kms/k%3A1/tags/action", b'{"action":"create"}', None),
]


@pytest.mark.parametrize(("method", "url", "body", "query"), CASES)
def test_our_signature_equals_the_sdk_signature(method, url, body, query) -> None:
    sdk_headers = sdk_signed(method, url, body, query)
    unsigned = {name: value for name, value in sdk_headers.items() if name != "Authorization"}
    full_url = url + ("?" + "&".join(f"{k}={v}" for k, v in query) if query else "")
    ours = sign_headers(method, full_url, unsigned, body, Credentials(AK, SK), NOW)
    assert ours["Authorization"] == sdk_headers["Authorization"]


@pytest.mark.parametrize(("method", "url", "body", "query"), CASES)
def test_sdk_signature_verifies(method, url, body, query) -> None:
    headers = CIMultiDict(sdk_signed(method, url, body, query))
    parts = urlsplit(url)
    query_string = "&".join(f"{k}={v}" for k, v in (query or []))
    verifier = SignatureVerifier({AK: SK}.get)
    assert verifier.verify(method, parts.path, query_string, headers, body, now=NOW + timedelta(minutes=3)) == AK


def _signed(body: bytes = b'{"key_id":"k1"}', now: datetime = NOW) -> CIMultiDict[str]:
    return CIMultiDict(
        sign_headers(
            "POST",
            "http://127.0.0.1:1/v1.0/p/kms/describe-key",
            {"Content-Type": "application/json"},
            body,
            Credentials(AK, SK),
            now,
        )
    )


def _verify(headers: CIMultiDict[str], body: bytes = b'{"key_id":"k1"}', path: str = "/v1.0/p/kms/describe-key"):
    return SignatureVerifier({AK: SK}.get).verify("POST", path, "", headers, body, now=NOW)


def test_own_signature_verifies() -> None:
    assert _verify(_signed()) == AK


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda h, b, p: (h, b'{"key_id":"k2"}', p), "KMS.0302"),  # body changed
        (lambda h, b, p: (h, b, "/v1.0/p/kms/disable-key"), "KMS.0302"),  # path changed
        (lambda h, b, p: (_set(h, "Authorization", h["Authorization"][:-1] + "0"), b, p), "KMS.0302"),
        (lambda h, b, p: (_set(h, "Authorization", h["Authorization"].replace(AK, "AKUNKNOWN")), b, p), "KMS.0302"),
        (lambda h, b, p: (_drop(h, "Authorization"), b, p), "KMS.0301"),
        (lambda h, b, p: (_set(h, "Authorization", "Basic abc"), b, p), "KMS.0301"),
        (lambda h, b, p: (_set(h, "Content-Type", "text/plain"), b, p), "KMS.0302"),  # signed header changed
        (lambda h, b, p: (_drop(h, "X-Sdk-Date"), b, p), "KMS.0301"),
        (lambda h, b, p: (_set(h, "X-Sdk-Date", "yesterday"), b, p), "KMS.0301"),
    ],
)
def test_tampered_requests_are_refused(mutate, code) -> None:
    headers, body, path = mutate(_signed(), b'{"key_id":"k1"}', "/v1.0/p/kms/describe-key")
    with pytest.raises(Unauthenticated) as caught:
        _verify(headers, body, path)
    assert caught.value.code == code


@pytest.mark.parametrize("offset", [timedelta(minutes=16), -timedelta(minutes=16), timedelta(days=2)])
def test_dates_outside_the_window_are_refused(offset: timedelta) -> None:
    with pytest.raises(Unauthenticated) as caught:
        _verify(_signed(now=NOW + offset))
    assert caught.value.code == "KMS.0303"


@pytest.mark.parametrize("offset", [timedelta(minutes=14), -timedelta(minutes=14)])
def test_dates_inside_the_window_are_accepted(offset: timedelta) -> None:
    assert _verify(_signed(now=NOW + offset)) == AK


def _set(headers: CIMultiDict[str], name: str, value: str) -> CIMultiDict[str]:
    headers[name] = value
    return headers


def _drop(headers: CIMultiDict[str], name: str) -> CIMultiDict[str]:
    del headers[name]
    return headers


@pytest.mark.parametrize(
    "value", ["20261128T080000", "2026-11-28T08:00:00Z", "20261328T080000Z", "20261128T250000Z", ""]
)
def test_malformed_sdk_dates_are_refused(value: str) -> None:
    headers = _signed()
    headers["X-Sdk-Date"] = value
    with pytest.raises(Unauthenticated) as caught:
        _verify(headers)
    assert caught.value.code == "KMS.0301"


def test_unknown_access_key_and_wrong_secret_are_indistinguishable() -> None:
    unknown = _signed()
    unknown["Authorization"] = unknown["Authorization"].replace(AK, "AKUNKNOWN")
    wrong = CIMultiDict(
        sign_headers("POST", "http://127.0.0.1:1/v1.0/p/kms/describe-key", {"Content-Type": "application/json"},
                     b'{"key_id":"k1"}', Credentials(AK, "not-the-secret"), NOW)
    )  # fmt: skip
    errors = []
    for headers in (unknown, wrong):
        with pytest.raises(Unauthenticated) as caught:
            _verify(headers)
        errors.append((caught.value.code, caught.value.message))
    assert errors[0] == errors[1]
