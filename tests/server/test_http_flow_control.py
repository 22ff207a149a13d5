"""Flow control: while a client reads no answers (writing paused), the front parses nothing more; once it reads
again, every request it pipelined is answered, in order."""

from __future__ import annotations

import asyncio
import contextlib
import socket

from http_front_support import running_front

from kubekms.server.http_messages import HttpRequest, HttpResponse

COUNT = 20000  # ~0.8 MB of pipelined requests: far more than the paused transport's buffer holds in answers


async def _echo(request: HttpRequest) -> HttpResponse:
    return HttpResponse.text(200, request.path, {})


async def test_pipelined_requests_held_while_writing_is_paused_are_answered_in_order_after() -> None:
    async with running_front(_echo) as front:
        client = socket.socket()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client.connect(("127.0.0.1", front.port))
        client.setblocking(False)
        loop = asyncio.get_running_loop()
        try:
            deadline = loop.time() + 10
            while not front.front.connections:
                assert loop.time() < deadline, "the connection was not accepted"
                await asyncio.sleep(0.01)
            (connection,) = front.front.connections
            server_side = connection._transport.get_extra_info("socket")  # type: ignore[union-attr]
            server_side.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)  # the kernel keeps few answers
            data = b"".join(f"GET /r/{n} HTTP/1.1\r\nHost: a\r\n\r\n".encode() for n in range(COUNT))
            sent, paused_seen, received = 0, False, bytearray()
            deadline = loop.time() + 20
            while sent < len(data) or received.count(b"HTTP/1.1 200 ") < COUNT:
                assert loop.time() < deadline, f"{received.count(b'HTTP/1.1 200 ')} of {COUNT} answered"
                with contextlib.suppress(BlockingIOError):
                    sent += client.send(data[sent : sent + 65536])
                if not paused_seen:  # read nothing until the front stops on a full transport
                    paused_seen = connection._writing_paused and connection._serving is None
                else:
                    with contextlib.suppress(BlockingIOError):
                        received += client.recv(1 << 20)
                await asyncio.sleep(0.001)  # the front runs in this loop: give it turns
            bodies = [answer.split(b"\r\n\r\n", 1)[1] for answer in bytes(received).split(b"HTTP/1.1 200 ")[1:]]
            assert paused_seen
            assert [body.decode() for body in bodies] == [f"/r/{n}" for n in range(COUNT)]
        finally:
            client.close()
