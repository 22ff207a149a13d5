"""SigV4 verification against requests signed by botocore's own signer: what passes and every way to fail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sigv4_support import BODY, SECRETS, signed

from kubekms.errors import Unauthenticated
from kubekms.server.sigv4 import SigV4Verifier
from kubekms.wire.aws_errors import InvalidSignature, aws_error_type


@pytest.fixture
def verifier() -> SigV4Verifier:
    return SigV4Verifier(SECRETS.get)


def test_a_botocore_signature_verifies(verifier: SigV4Verifier) -> None:
    verified = verifier.verify("POST", "/", signed(), BODY)
    assert (verified.access_key, verified.region) == ("AKALICE", "eu-west-1")


def test_changed_body_header_or_method_fails(verifier: SigV4Verifier) -> None:
    with pytest.raises(InvalidSignature):
        verifier.verify("POST", "/", signed(), BODY.replace(b"32", b"64"))
    tampered = signed()
    tampered["X-Amz-Target"] = "TrentService.Decrypt"
    with pytest.raises(InvalidSignature):
        verifier.verify("POST", "/", tampered, BODY)
    with pytest.raises(InvalidSignature):
        verifier.verify("PUT", "/", signed(), BODY)
    with pytest.raises(InvalidSignature):
        verifier.verify("POST", "/other", signed(), BODY)


def test_wrong_secret_and_unknown_key(verifier: SigV4Verifier) -> None:
    with pytest.raises(InvalidSignature) as wrong:
        verifier.verify("POST", "/", signed(secret="guess"), BODY)
    assert aws_error_type(wrong.value) == ("InvalidSignatureException", 400)
    unknown = signed()
    unknown["Authorization"] = unknown["Authorization"].replace("AKALICE", "AKMALLORY")
    with pytest.raises(Unauthenticated) as refused:
        verifier.verify("POST", "/", unknown, BODY)
    assert not isinstance(refused.value, InvalidSignature)
    assert aws_error_type(refused.value) == ("UnrecognizedClientException", 400)


def test_stale_or_future_dates_fail(verifier: SigV4Verifier) -> None:
    headers = signed()
    for skew in (timedelta(minutes=16), -timedelta(minutes=16)):
        with pytest.raises(InvalidSignature, match="expired"):
            verifier.verify("POST", "/", headers, BODY, now=datetime.now(UTC) + skew)
    verifier.verify("POST", "/", headers, BODY, now=datetime.now(UTC) + timedelta(minutes=14))


def test_other_service_scope_fails(verifier: SigV4Verifier) -> None:
    with pytest.raises(InvalidSignature, match="service"):
        verifier.verify("POST", "/", signed(service="s3"), BODY)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda h: h.pop("Authorization"), "missing Authorization"),
        (lambda h: h.__setitem__("Authorization", "Basic abc"), "AWS4-HMAC-SHA256"),
        (lambda h: h.__setitem__("Authorization", "AWS4-HMAC-SHA256 Credential=AKALICE/x"), "Credential"),
        (lambda h: h.pop("X-Amz-Date"), "X-Amz-Date"),
        (lambda h: h.__setitem__("X-Amz-Security-Token", "token"), "session tokens"),
        (lambda h: h.pop("X-Amz-Target"), "missing"),
        (lambda h: h.__setitem__("X-Amz-Content-SHA256", "0" * 64), "does not match the body"),
        (lambda h: h.__setitem__("Authorization", h["Authorization"].replace("host;", "user-agent;host;")), "signable"),
    ],
)
def test_malformed_requests_fail_with_a_precise_message(verifier: SigV4Verifier, change, error: str) -> None:
    headers = signed()
    change(headers)
    with pytest.raises(Unauthenticated, match=error):
        verifier.verify("POST", "/", headers, BODY)
