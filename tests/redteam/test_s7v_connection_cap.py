"""Adversarial review of the connection cap (910af8b): connections that escape it.

The cap exists so that "one client cannot take every descriptor" of a worker. A connection whose first
request is the console's is handed to aiohttp and forgotten by the front (no longer counted): a client
that asks ``GET /console/sign-in`` on each connection and keeps it open holds as many descriptors as it
likes (aiohttp keeps an idle connection 75 s, and the client may ask again before that).
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from kubekms.devenv.kmsserver import KMSServer
from kubekms.server.http_front import HttpLimits
from kubekms.server.http_messages import HttpRequest, HttpResponse

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
from http_front_support import closed_by_server, read_answer, running_front, tls_contexts

CAP = 4
BEYOND = 40
SIGN_IN = b"GET /console/sign-in HTTP/1.1\r\nHost: kms\r\nAccept: text/html\r\n\r\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    state_dir = tmp_path_factory.mktemp("kms-cap-console")
    server = KMSServer(state_dir)
    config_path = state_dir / "server.yaml"  # written by KMSServer; the console is on by default
    config = yaml.safe_load(config_path.read_text())
    config_path.write_text(yaml.safe_dump({**config, "max_connections": CAP}))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _asked_console(server: KMSServer) -> socket.socket:
    """A connection that asked for the sign-in page; open (not refused) if an answer came back."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        sock.sendall(SIGN_IN)
        sock.recv(1)  # an answer, b"" (closed) or a reset: either way the server decided
    except (ConnectionResetError, BrokenPipeError):
        pass
    return sock


def test_console_connections_do_not_escape_the_cap(server: KMSServer) -> None:
    assert server.pid is not None
    before = len(os.listdir(f"/proc/{server.pid}/fd"))
    held = [_asked_console(server) for _ in range(BEYOND)]
    try:
        held_by_server = len(os.listdir(f"/proc/{server.pid}/fd")) - before
        assert held_by_server <= CAP + 2, f"{held_by_server} descriptors for {BEYOND} connections, cap {CAP}"
    finally:
        for sock in held:
            sock.close()


# A TLS connection reaches the front (connection_made) only once its handshake is done: until then (asyncio's
# ssl_handshake_timeout, 60 s) it holds a descriptor the cap does not count. A client opening TCP connections
# and sending nothing holds as many as it likes, every minute again.


async def _ok(request: HttpRequest) -> HttpResponse:
    return HttpResponse.text(200, "ok", {})


async def test_tls_connections_still_in_their_handshake_do_not_escape_the_cap(tmp_path: Path) -> None:
    server_tls, client_tls = tls_contexts(tmp_path)
    async with running_front(_ok, limits=HttpLimits(max_connections=CAP), tls=server_tls) as front:
        served = [await asyncio.open_connection("127.0.0.1", front.port, ssl=client_tls) for _ in range(CAP)]
        for _, writer in served:
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: kms\r\n\r\n")
        for reader, _ in served:
            assert (await read_answer(reader)).status == 200
        silent = [await asyncio.open_connection("127.0.0.1", front.port) for _ in range(BEYOND)]
        try:
            for reader, _ in silent:  # no handshake started: beyond the cap, they must not be kept
                assert await closed_by_server(reader, within=2.0)
        finally:
            for _, writer in served + silent:  # a reset: neither side waits for a TLS shutdown or handshake
                writer.transport.abort()
