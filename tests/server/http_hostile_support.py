"""Raw-socket helpers for hostile-client tests of the HTTP front: send bytes, read every answer until the server
closes, split the answers, reset a connection (RST, not FIN)."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Callable

from http_front_support import Answer


async def exchange(port: int, data: bytes, *, within: float = 5.0) -> bytes:
    """Send ``data`` on a fresh connection and return everything the server writes until it closes (an RST too:
    it closes with bytes of ours unread rather than drain a refused request)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    received = b""
    try:
        writer.write(data)
        async with asyncio.timeout(within):
            while chunk := await reader.read(65536):
                received += chunk
    except ConnectionResetError:
        pass
    finally:
        writer.close()
    return received


def split_answers(data: bytes) -> list[Answer]:
    """The answers in ``data`` (each framed by its Content-Length); no bytes may be left over."""
    answers: list[Answer] = []
    while data:
        head, separator, rest = data.partition(b"\r\n\r\n")
        assert separator, f"an unframed tail: {data[:200]!r}"
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
        length = int(headers.get("content-length", "0"))
        answers.append(Answer(int(status_line.split(" ")[1]), headers, rest[:length]))
        data = rest[length:]
    return answers


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with an RST (SO_LINGER 0): the abrupt end of a client that vanished."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def closed_or_reset(reader: asyncio.StreamReader, within: float = 5.0) -> bool:
    """True when the server ends the connection, sending nothing more: EOF, or an RST (it closed with our bytes
    still unread in its buffer, as it does rather than drain a refused body)."""
    try:
        async with asyncio.timeout(within):
            return await reader.read() == b""
    except ConnectionResetError:
        return True


async def condition(check: Callable[[], bool], within: float = 5.0) -> None:
    """Return once ``check()`` holds; TimeoutError after ``within`` seconds."""
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110 (a state of the front, with no event to wait on)
            await asyncio.sleep(0.01)
