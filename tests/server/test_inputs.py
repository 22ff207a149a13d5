"""The strict edge parsers (kubekms.wire.inputs) and the refusal log's rate limit, without a server."""

from __future__ import annotations

import json
import logging

import pytest
from prometheus_client import generate_latest

from kubekms.errors import InvalidArgument, Reason, Unauthenticated
from kubekms.server.logs import RefusalLog
from kubekms.server.metrics import ServerMetrics
from kubekms.wire import inputs


@pytest.mark.parametrize("value", ["7", "-7", "0", "9223372036854775807", 7, -7])
def test_ascii_integers_within_bounds(value: object) -> None:
    assert inputs.integer(value, "n", (-(2**63), 2**63 - 1), allow_text=True) == int(str(value))


@pytest.mark.parametrize(
    "value",
    ["²", "٣", "\U0001d7d5", "--7", "+7", "1_0", " 7", "7\n", "0x10", "7.0", "", "1" * 21, "9223372036854775808",
     True, 7.5, None, [7], {"n": 7}],
)  # fmt: skip
def test_anything_else_is_not_an_integer(value: object) -> None:
    with pytest.raises(InvalidArgument, match="n must be"):
        inputs.integer(value, "n", (-(2**63), 2**63 - 1), allow_text=True)


def test_text_integers_only_where_the_wire_sends_them() -> None:
    with pytest.raises(InvalidArgument):
        inputs.integer("7", "Limit", (1, 10), allow_text=False)
    with pytest.raises(InvalidArgument, match="from 1 to 10"):
        inputs.integer(11, "Limit", (1, 10), allow_text=False)


def test_markers_are_offsets_that_fit_in_64_bits() -> None:
    assert inputs.marker("", "Marker") is None and inputs.marker("12", "Marker") == 12
    for bad in ("²", "-1", "18446744073709551616", "a"):
        with pytest.raises(InvalidArgument):
            inputs.marker(bad, "Marker")


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": "\\ud800"}',  # lone high surrogate
        b'{"a": ["x", {"b": "\\udfff"}]}',  # nested lone low surrogate
        b'{"\\udc80": 1}',  # in a name
        b'{"a": ' + b"[" * 9 + b"]" * 9 + b"}",  # deeper than the limit
        b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",  # deeper than Python's recursion limit
        b'{"a": ' + b"9" * 21 + b"}",
        b'{"a": ' + b"9" * 5000 + b"}",  # int() refuses more than 4300 digits with a ValueError
        b'{"a": NaN}',
        b"\xff\xfe{}",
        b"[1]",
        b'{"a": [' + b"0," * 30_000 + b"0]}",  # more values than the limit
    ],
)
def test_bodies_beyond_the_limits_are_malformed(raw: bytes) -> None:
    with pytest.raises(inputs.MalformedJson) as caught:
        inputs.json_object(raw)
    assert caught.value.reason is Reason.MALFORMED_BODY


def test_bodies_within_the_limits_parse() -> None:
    body = {"key_id": "k", "tags": [{"key": "ü", "values": ["👩‍💻", "\u0000"]}], "n": 2**63, "pair": "\ud83d\ude00"}
    parsed = inputs.json_object(json.dumps(body).encode())
    assert parsed["pair"] == "😀" and parsed["n"] == 2**63  # an escaped surrogate *pair* is one valid character
    assert inputs.json_object(b"  ") == {}


@pytest.mark.parametrize("value", ["ü", "a\udcff", "a\x00", "a\nb", "x" * 9000])
def test_header_values_must_be_printable_ascii(value: str) -> None:
    with pytest.raises(Unauthenticated, match="printable ASCII"):
        inputs.header({"Authorization": value}, "Authorization", error=Unauthenticated)
    assert inputs.header({}, "Authorization", error=Unauthenticated) is None


class Clock:
    """A clock the test moves by hand (the refusal log's window is time-based)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_refusals_are_rate_limited_per_client_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    metrics, clock = ServerMetrics(), Clock()
    refusals = RefusalLog(metrics, burst=3, window=60.0, clock=clock)

    def refuse(client: str, times: int) -> None:
        for _ in range(times):
            refusals.refused(client=client, wire="v1", reason="KMS.0202", status=400, operation="x", request_id="r")

    with caplog.at_level(logging.INFO, logger="kubekms.server.refusals"):
        refuse("10.0.0.1", 100)
        refuse("10.0.0.2", 1)
        assert [r.fields["client"] for r in caplog.records] == ["10.0.0.1"] * 3 + ["10.0.0.2"]  # type: ignore[attr-defined]
        clock.now += 61
        refuse("10.0.0.1", 1)
    assert caplog.records[-1].fields["suppressed_before"] == 97  # type: ignore[attr-defined]
    assert all(record.exc_info is None for record in caplog.records)
    exposition = generate_latest(metrics.registry).decode()
    assert 'kubekms_server_refused_requests_total{reason="KMS.0202",wire="v1"} 102.0' in exposition
    assert "kubekms_server_refusal_lines_suppressed_total 97.0" in exposition


def test_the_client_table_is_bounded() -> None:
    refusals = RefusalLog(ServerMetrics(), max_clients=10)
    for number in range(1000):
        refusals.refused(client=f"c{number}", wire="aws", reason="X", status=400, operation="x", request_id="r")
    assert len(refusals._clients) == 10
