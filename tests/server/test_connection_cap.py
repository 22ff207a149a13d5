"""``max_connections``: one client opening connections beyond the cap gets them closed at once, the server's
descriptors stay bounded, each refusal is counted and logged (rate-limited, no traceback), and a fresh connection
is served again once others close."""

from __future__ import annotations

import os
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from kubekms.devenv.kmsserver import KMSServer
from kubekms.devenv.processes import wait_for

CAP = 4
BEYOND = 40  # connections opened past the cap
HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: kms\r\n\r\n"


def _capped_server(state_dir: Path, *, console: bool) -> Iterator[KMSServer]:
    server = KMSServer(state_dir)
    config_path = state_dir / "server.yaml"  # written by KMSServer; documented in kubekms.devenv.kmsserver
    config = yaml.safe_load(config_path.read_text())
    config_path.write_text(yaml.safe_dump({**config, "max_connections": CAP, "console": {"enabled": console}}))
    server.start()  # workers: 1 (KMSServer's setting): the server process itself serves
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    yield from _capped_server(tmp_path_factory.mktemp("kms-cap"), console=False)


@pytest.fixture(scope="module")
def console_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    yield from _capped_server(tmp_path_factory.mktemp("kms-cap-console"), console=True)


def _served(server: KMSServer) -> socket.socket:
    """A keep-alive connection that had one /healthz answered: the server counts it."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.sendall(HEALTHZ)
    answer = b""
    while b"\r\n\r\nok" not in answer:
        chunk = sock.recv(4096)
        assert chunk, f"closed before its answer: {answer!r}"
        answer += chunk
    assert answer.startswith(b"HTTP/1.1 200 ")
    return sock


def _closed_unanswered(sock: socket.socket) -> bool:
    """The server closed (or reset) the connection without answering the request sent on it."""
    try:
        sock.sendall(HEALTHZ)
        return sock.recv(4096) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True


def _descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _refusals(server: KMSServer) -> float:
    with urllib.request.urlopen(f"{server.endpoint}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (sample.name == "kubekms_server_refused_requests_total"
                    and sample.labels == {"wire": "http", "reason": "HTTP.TooManyConnections"}):  # fmt: skip
                return sample.value
    return 0.0


def _healthz(server: KMSServer) -> bool:
    with urllib.request.urlopen(f"{server.endpoint}/healthz", timeout=5) as answer:
        return bool(answer.status == 200)


def test_connections_beyond_the_cap_are_closed_at_once_and_a_fresh_one_is_served_after(server: KMSServer) -> None:
    assert server.pid is not None
    wait_for(lambda: _healthz(server), 10, "/healthz before the test")
    refused_before = _refusals(server)
    descriptors_before = _descriptors(server.pid)
    held = [_served(server) for _ in range(CAP)]
    extra: list[socket.socket] = []
    try:
        for _ in range(BEYOND):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)  # the kernel accepts it
            extra.append(sock)
            assert _closed_unanswered(sock)
        # the server holds descriptors for its CAP connections only, not for the BEYOND ones a client kept open
        assert _descriptors(server.pid) <= descriptors_before + CAP + 2
        for sock in held:  # the connections within the cap are still served
            sock.sendall(HEALTHZ)
            assert sock.recv(4096).startswith(b"HTTP/1.1 200 ")
    finally:
        for sock in held + extra:
            sock.close()
    wait_for(lambda: _healthz(server), 10, "/healthz on a fresh connection once the others closed")
    assert wait_for(lambda: _refusals(server) - refused_before >= BEYOND, 10, "every refusal counted")
    log = server.log.read_text()
    refusal_lines = [line for line in log.splitlines() if "HTTP.TooManyConnections" in line]
    assert 1 <= len(refusal_lines) <= 5  # one line per refusal, at most 5 a minute for one client
    assert '"request refused"' in refusal_lines[0] and '"status": 503' in refusal_lines[0]
    assert "Traceback" not in log


def test_max_connections_in_the_config_file(tmp_path: Path) -> None:
    from kubekms.server.config import ServerConfig, ServerConfigError, connection_cap

    base = {"state_dir": "state", "principals_file": "principals.yaml"}
    path = tmp_path / "server.yaml"
    path.write_text(yaml.safe_dump(base))
    assert ServerConfig.load(path).max_connections == connection_cap() >= 1  # auto: from RLIMIT_NOFILE
    path.write_text(yaml.safe_dump({**base, "max_connections": 7}))
    assert ServerConfig.load(path).max_connections == 7
    for wrong in (0, -1, "many", True, 2.5):
        path.write_text(yaml.safe_dump({**base, "max_connections": wrong}))
        with pytest.raises(ServerConfigError, match="max_connections must be 'auto' or a whole number >= 1"):
            ServerConfig.load(path)


def test_connections_handed_to_the_console_count_until_they_end(console_server: KMSServer) -> None:
    wait_for(lambda: _healthz(console_server), 10, "/healthz before the test")
    console = []
    try:
        for _ in range(CAP):
            sock = socket.create_connection(("127.0.0.1", console_server.port), timeout=10)
            console.append(sock)
            sock.sendall(b"GET /console/sign-in HTTP/1.1\r\nHost: kms\r\n\r\n")  # aiohttp answers, keeps it open
            assert sock.recv(4096).startswith(b"HTTP/1.1 200 ")
        beyond = socket.create_connection(("127.0.0.1", console_server.port), timeout=10)
        try:
            assert _closed_unanswered(beyond)  # the console's connections fill the cap
        finally:
            beyond.close()
    finally:
        for sock in console:
            sock.close()
    wait_for(lambda: _healthz(console_server), 10, "/healthz once the console's connections ended")
