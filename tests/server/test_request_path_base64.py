"""The AWS wire's blob fields: exactly what base64.b64decode(value, validate=True) takes, the same bytes; anything
else is InvalidArgument (the check runs without base64's Python wrapper)."""

from __future__ import annotations

import base64
import binascii

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubekms.errors import InvalidArgument
from kubekms.server.aws_call import AwsRequest

BOUNDS = (0, 4096)
near_base64 = st.text(alphabet="ABCabc019+/=-_ \n\t\r.é\x00", max_size=40)


def _strict(value: str) -> bytes | None:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


# no per-example deadline: Hypothesis's 200 ms (a wall-clock bound) fails as Flaky when a loaded CI machine stalls once
NO_DEADLINE = settings(deadline=None)


@NO_DEADLINE
@given(st.binary(max_size=64).map(lambda data: base64.b64encode(data).decode()) | near_base64)
def test_a_blob_is_what_strict_base64_decodes(value: str) -> None:
    request = AwsRequest(account="default", region="us-east-1", body={"Blob": value})
    expected = _strict(value)
    if expected is None:
        with pytest.raises(InvalidArgument, match="Blob is not valid base64"):
            request.blob("Blob", BOUNDS)
    else:
        assert request.blob("Blob", BOUNDS) == expected


def test_odd_cases_as_strict_base64_takes_them() -> None:
    for value, expected in [("QUJD", b"ABC"), ("QUJD==", b"ABC"), ("", b"")]:
        assert AwsRequest(account="a", region="r", body={"B": value}).blob("B", BOUNDS) == expected
    for value in ("QUJ", "QU JD", "QUJD\n", "Q===", "éAAA", "QUJD=QUJD", "_-AA"):
        with pytest.raises(InvalidArgument):
            AwsRequest(account="a", region="r", body={"B": value}).blob("B", BOUNDS)
