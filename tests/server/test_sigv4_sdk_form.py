"""The SDK form's fast parse of the Authorization header finds what the general parse finds, or refuses alike.

The fast parse skips the header check (printable ASCII, at most MAX_HEADER_CHARS): its pattern admits printable
ASCII only, and anything it does not match goes through the general parse, which checks. Values near the SDK form,
with characters either side of that rule put in, hold the two parses to the same answer.
"""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict

from kubekms.errors import KMSError
from kubekms.server.sigv4 import SigV4Authorization
from kubekms.wire import inputs

SDK_VALUE = (
    "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20261201/us-east-1/kms/aws4_request, "
    "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=" + "ab" * 32
)
# printable ASCII, the separators the pattern excludes, and what the header check refuses
ODD_CHARACTERS = st.sampled_from([*" ,/=\t\x00\x1f\x7f\x80é€\udcff;:-.~!<>", "", "  ", "a" * 9000])


def answer(parse: object, value: str) -> object:
    headers = CIMultiDict({"Authorization": value})
    try:
        return parse(headers)  # type: ignore[operator]
    except KMSError as error:
        return (type(error), error.message, error.reason)


@settings(max_examples=400, deadline=None)
@given(position=st.integers(0, len(SDK_VALUE)), odd=ODD_CHARACTERS, replace=st.booleans())
@example(position=0, odd="", replace=False)  # the SDK form itself
@example(position=len(SDK_VALUE), odd="a" * (inputs.MAX_HEADER_CHARS - len(SDK_VALUE)), replace=False)
def test_fast_parse_answers_as_the_general_parse(position: int, odd: str, replace: bool) -> None:
    value = SDK_VALUE[:position] + odd + SDK_VALUE[position + replace :]
    assert answer(SigV4Authorization.parse, value) == answer(SigV4Authorization.parse_any_form, value)


def test_an_sdk_form_header_beyond_the_limit_is_refused() -> None:
    value = SDK_VALUE + "a" * (inputs.MAX_HEADER_CHARS + 1 - len(SDK_VALUE))  # still the SDK form's pattern
    refused = answer(SigV4Authorization.parse, value)
    assert isinstance(refused, tuple) and "must be printable ASCII" in refused[1]


def test_a_non_printable_signature_is_refused_by_the_header_check() -> None:
    refused = answer(SigV4Authorization.parse, SDK_VALUE + "\x7f")
    assert isinstance(refused, tuple) and refused[1] == "header Authorization must be printable ASCII"
