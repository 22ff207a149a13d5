"""Adversarial review of the HTTP front's flow control (read with the eager answers of 2426167).

"Reading pauses while answers are pending or the transport's buffer is full": the transport stops
reading, but the answering loop goes on parsing and answering what the last read brought (up to
256 KiB, kept unparsed while max_pending requests wait), whatever the write buffer holds. A client
that pipelines tiny requests and never reads its answers makes the server hold about three times one
read in answers: 0.2-0.8 MB per connection (measured) instead of the transport's high-water mark
(64 KiB) plus one max_pending batch and one 4 KiB parse slice's answers (~15 KB); times the
connection cap, memory exhaustion for the price of a few hundred connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
from pathlib import Path

from kubekms.server.http_messages import HttpRequest, HttpResponse

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
from http_front_support import running_front

REQUEST = b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"
BUFFER_BOUND = 128 * 1024  # high-water mark (64 KiB) + max_pending's and one parse slice's answers, with room


async def _ok(request: HttpRequest) -> HttpResponse:
    return HttpResponse.text(200, "ok", {})


async def test_answers_a_client_does_not_read_stay_bounded() -> None:
    async with running_front(_ok) as front:
        client = socket.socket()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # reads nothing: its window fills at once
        client.connect(("127.0.0.1", front.port))
        client.setblocking(False)
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 10
            while not front.front.connections:  # accepted by the front, in this loop
                assert loop.time() < deadline, "the connection was not accepted"
                await asyncio.sleep(0.01)
            (connection,) = front.front.connections
            server_side = connection._transport.get_extra_info("socket")  # type: ignore[union-attr]
            server_side.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)  # the kernel keeps few answers
            data, sent = REQUEST * (1024 * 1024 // len(REQUEST)), 0
            with contextlib.suppress(BlockingIOError):  # as much as the kernel takes before the server reads
                while sent < len(data):
                    sent += client.send(data[sent : sent + 65536])

            def stopped() -> bool:  # its answers unread, writing stays paused; nothing being answered: final
                return bool(connection._writing_paused and connection._serving is None)

            deadline = loop.time() + 10
            while not stopped():
                assert loop.time() < deadline, "writing was not paused, or answering did not end"
                await asyncio.sleep(0.01)  # the server runs in this loop: give it turns
            held = connection._transport.get_write_buffer_size()  # type: ignore[union-attr]
            assert held <= BUFFER_BOUND, f"{held} bytes of answers held for a client that reads none ({sent} sent)"
        finally:
            client.close()
