"""``max_connections`` with TLS, under the server's loop (uvloop) and asyncio's: a connection counts from its accept,
not from the end of its handshake; one whose handshake fails, or whose client leaves during it, counts no more; a
request sent right behind the handshake is answered."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
import uvloop
from http_front_support import Front, closed_by_server, read_answer, running_front, tls_contexts

from kubekms.server.http_front import HttpLimits
from kubekms.server.http_messages import HttpRequest, HttpResponse

CAP = 4
HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: kms\r\n\r\n"


async def _ok(request: HttpRequest) -> HttpResponse:
    return HttpResponse.text(200, "ok", {})


async def _counted(front: Front, expected: int) -> None:
    deadline = asyncio.get_running_loop().time() + 10
    while front.front.open_connections != expected:
        assert asyncio.get_running_loop().time() < deadline, f"{front.front.open_connections} open, not {expected}"
        await asyncio.sleep(0.01)


async def _scenario(directory: Path) -> None:
    server_tls, client_tls = tls_contexts(directory)
    async with running_front(_ok, limits=HttpLimits(max_connections=CAP), tls=server_tls) as front:
        silent = [await asyncio.open_connection("127.0.0.1", front.port) for _ in range(CAP)]
        await _counted(front, CAP)  # no handshake yet: counted all the same
        reader, _ = await asyncio.open_connection("127.0.0.1", front.port)
        assert await closed_by_server(reader, within=5.0)  # one beyond: closed before any handshake
        for _, writer in silent:
            writer.transport.abort()
        await _counted(front, 0)  # the client left during the handshake
        garbage = [await asyncio.open_connection("127.0.0.1", front.port) for _ in range(CAP)]
        for reader, writer in garbage:
            writer.write(HEALTHZ)  # plain HTTP on the TLS port: the handshake fails
            await asyncio.wait_for(reader.read(), 5.0)  # (maybe an alert, then) closed
        await _counted(front, 0)
        served = [await asyncio.open_connection("127.0.0.1", front.port, ssl=client_tls) for _ in range(CAP)]
        for _, writer in served:
            writer.write(HEALTHZ)  # at once: it may reach the server with the handshake's last flight
        for reader, _ in served:
            answer = await read_answer(reader)
            assert (answer.status, answer.body) == (200, b"ok")
        await _counted(front, CAP)
        for _, writer in served:
            writer.transport.abort()
        await _counted(front, 0)


@pytest.mark.parametrize("run", [asyncio.run, uvloop.run], ids=["asyncio", "uvloop"])
def test_tls_connections_count_from_their_accept(
    tmp_path: Path, run: Callable[[Coroutine[Any, Any, None]], None]
) -> None:
    run(_scenario(tmp_path))
