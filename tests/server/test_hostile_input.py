"""Hostile input at the edge of a real server: precise refusals, nothing written, the connection closed on
oversized bodies, one rate-limited log line per refusal (no traceback), counted in the metrics."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from collections.abc import Iterator

import pytest
from test_wire_errors import error_code, send

from kubekms.devenv.kmsserver import KMSServer, kms_server
from kubekms.providers import Credentials

PROJECT = "edge"


@pytest.fixture(scope="module")
def edge_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    with kms_server(tmp_path_factory.mktemp("kms-edge"), project_id=PROJECT) as running:
        yield running


@pytest.fixture
def admin(edge_server: KMSServer) -> Credentials:
    return Credentials.from_file(edge_server.credentials_file("admin"))


def keystore_entries(server: KMSServer) -> list[str]:
    return sorted(path.name for path in (server.state_dir / "keystore").iterdir())


def metric(server: KMSServer, prefix: str) -> float:
    with urllib.request.urlopen(f"{server.endpoint}/metrics", timeout=5) as answer:
        lines = answer.read().decode().splitlines()
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith(prefix))


@pytest.mark.parametrize("project", ["edge%0A", "edge%0D%0A", "%0A", "edge%00", "ed.ge", "a" * 65, "pr%C3%B3j"])
async def test_a_project_id_must_match_whole_and_creates_nothing(
    edge_server: KMSServer, admin: Credentials, project: str
) -> None:
    before = keystore_entries(edge_server)
    status, payload, _ = await send(edge_server, "GET", f"/v1.0/{project}/kms/user-instances", credentials=admin)
    assert (status, error_code(payload)) == (400, "KMS.0201")
    assert keystore_entries(edge_server) == before


async def test_an_empty_alias_is_as_missing_as_no_alias(edge_server: KMSServer, admin: Credentials) -> None:
    path = f"/v1.0/{PROJECT}/kms/create-key"
    for body in (b'{"key_alias": ""}', b"{}", b'{"key_alias": "edge-key\\n"}'):
        status, payload, _ = await send(edge_server, "POST", path, body, credentials=admin)
        assert status == 400 and error_code(payload) in ("KMS.0204", "KMS.1101"), body
    status, payload, _ = await send(edge_server, "POST", f"/v1.0/{PROJECT}/kms/list-keys", b"{}", credentials=admin)
    assert status == 200 and payload["keys"] == []


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("datakey_length", "²⁵⁶"),  # superscripts: str.isdigit() says yes, int() says no
        ("datakey_length", "\u0662\u0665\u0666"),  # Arabic-Indic digits: int() would read 256
        ("datakey_length", "--7"),
        ("datakey_length", "1" * 5000),
        ("datakey_length", 18446744073709551616),
        ("key_id", "\ud800"),
        ("additional_authenticated_data", "ctx\udfff"),
    ],
)
async def test_malformed_fields_are_refused_with_a_wire_code(
    edge_server: KMSServer, admin: Credentials, field: str, value: object
) -> None:
    body = {"key_id": "edge-anything", "datakey_length": "256", field: value}
    raw = json.dumps(body).encode()  # a lone surrogate travels as its \\udxxx escape
    status, payload, _ = await send(edge_server, "POST", f"/v1.0/{PROJECT}/kms/create-datakey", raw, credentials=admin)
    assert status == 400 and error_code(payload) in ("KMS.0202", "KMS.1901", "KMS.0205", "KMS.0208")


async def test_deep_json_and_huge_integers_are_malformed_bodies(edge_server: KMSServer, admin: Credentials) -> None:
    for raw in (b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}", b'{"limit": ' + b"9" * 5000 + b"}"):
        status, payload, _ = await send(edge_server, "POST", f"/v1.0/{PROJECT}/kms/list-keys", raw, credentials=admin)
        assert (status, error_code(payload)) == (400, "KMS.0202")


def test_an_oversized_body_is_refused_and_the_connection_closed_without_draining(edge_server: KMSServer) -> None:
    declared = 50 * 1024 * 1024
    with socket.create_connection(("127.0.0.1", edge_server.port), timeout=10) as sock:
        sock.sendall(
            f"POST /v1.0/{PROJECT}/kms/list-keys HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {declared}\r\n\r\n".encode()
            + b"{" * 4096
        )
        started, received = time.monotonic(), b""
        while chunk := sock.recv(65536):  # EOF: the server closed the connection
            received += chunk
        elapsed = time.monotonic() - started
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    assert b"Connection: close" in head
    assert json.loads(body)["error"]["error_code"] == "KMS.0203"
    assert elapsed < 5  # aiohttp's default lingers 10 s draining the rest


def test_refusals_log_one_line_each_rate_limited_per_client_and_counted(edge_server: KMSServer) -> None:
    log_before = edge_server.log.read_text()
    counted_before = metric(edge_server, 'kubekms_server_refused_requests_total{reason="KMS.0301",wire="v1"}')
    suppressed_before = metric(edge_server, "kubekms_server_refusal_lines_suppressed_total")
    for _ in range(40):  # unsigned: refused before authentication
        request = urllib.request.Request(f"{edge_server.endpoint}/v1.0/{PROJECT}/kms/list-keys", data=b"{}")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=5)
        assert refused.value.code == 401
    with socket.create_connection(("127.0.0.1", edge_server.port), timeout=5) as sock:
        sock.sendall(b"POST /healthz HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n")
        assert sock.recv(1024).split(b" ", 2)[1] == b"400"
    deadline = time.monotonic() + 10
    while metric(edge_server, 'kubekms_server_refused_requests_total{reason="HTTP.') < 1:
        assert time.monotonic() < deadline, "the malformed request was not counted"
        time.sleep(0.05)
    assert metric(edge_server, 'kubekms_server_refused_requests_total{reason="KMS.0301",wire="v1"}') == (
        counted_before + 40
    )
    assert metric(edge_server, "kubekms_server_refusal_lines_suppressed_total") >= suppressed_before + 40 - 5
    new_lines = edge_server.log.read_text()[len(log_before) :].splitlines()
    refusals = [json.loads(line) for line in new_lines if '"request refused"' in line]
    assert len(refusals) <= 5  # at most the burst of one client (earlier tests may have used it): the rest is counted
    assert all(entry["client"] == "127.0.0.1" and entry["level"] == "info" for entry in refusals)
    assert "Traceback" not in edge_server.log.read_text()
