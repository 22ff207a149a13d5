"""The SigV4 Authorization header's fast form gives exactly what the general parse gives, or leaves it to it."""

from __future__ import annotations

import itertools

import pytest
from multidict import CIMultiDict
from sigv4_support import signed

from kubekms.errors import KMSError
from kubekms.server.sigv4 import _SDK_AUTHORIZATION, SigV4Authorization

CREDENTIAL = "AKALICE/20261201/eu-west-1/kms/aws4_request"
NAMES = "content-type;host;x-amz-date;x-amz-target"
SIGNATURE = "a" * 64
PIECES = {
    "credential": [CREDENTIAL, "AK=X/20261201/eu-west-1/kms/aws4_request", "AKALICE//eu-west-1/kms/aws4_request",
                   "AKALICE/20261201/eu-west-1/kms/aws4_request/x", "AK ALICE/20261201/eu-west-1/kms/aws4_request",
                   "AKALICE/20261201/eu-west-1/kms/aws4_requestx", "", "\t" + CREDENTIAL],
    "names": [NAMES, "host", "host;;x-amz-date", "", "a=b", "\t" + NAMES, NAMES + "\t"],
    "signature": [SIGNATURE, "", "ab,cd", "==", SIGNATURE + "\t"],
    "separator": [", ", ",", " , ", ",  "],
}  # fmt: skip


def _outcome(parse: object, headers: CIMultiDict[str]) -> object:
    try:
        return parse(headers)  # type: ignore[operator]
    except KMSError as error:
        return type(error), error.message


def _headers(value: str) -> CIMultiDict[str]:
    return CIMultiDict({"Authorization": value})


def test_every_variation_parses_as_the_general_parse_does() -> None:
    fast_taken = 0
    for credential, names, signature, separator in itertools.product(*PIECES.values()):
        for value in (
            f"AWS4-HMAC-SHA256 Credential={credential}{separator}SignedHeaders={names}{separator}Signature={signature}",
            f"AWS4-HMAC-SHA256 SignedHeaders={names}{separator}Credential={credential}{separator}Signature={signature}",
            f"AWS4-HMAC-SHA256 Credential={credential}{separator}SignedHeaders={names}{separator}Signature={signature}"
            f"{separator}Signature=bb",
            f" AWS4-HMAC-SHA256 Credential={credential}{separator}SignedHeaders={names}{separator}"
            f"Signature={signature} ",
        ):
            fast_taken += _SDK_AUTHORIZATION.fullmatch(value) is not None
            headers = _headers(value)
            assert _outcome(SigV4Authorization.parse, headers) == _outcome(
                SigV4Authorization.parse_any_form, headers
            ), value
    assert fast_taken >= 4  # the SDK forms among them


@pytest.mark.parametrize("region", ["eu-west-1", "us-east-1"])
def test_botocores_header_takes_the_fast_form(region: str) -> None:
    headers = signed(region=region)
    assert _SDK_AUTHORIZATION.fullmatch(headers["Authorization"]) is not None
    parsed = SigV4Authorization.parse(headers)
    assert parsed == SigV4Authorization.parse_any_form(headers)
    assert (parsed.access_key, parsed.region, parsed.service) == ("AKALICE", region, "kms")
