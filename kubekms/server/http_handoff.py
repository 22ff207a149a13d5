"""A connection of the HTTP front going to aiohttp (the web console): its requests replayed as parsed.

httptools tells no byte offsets, so the bytes a console request arrived in cannot be cut out of
what was read. Instead each request from the console's onward is written again from the parser's
events (request line, header fields as received, the body; chunked bodies re-chunked) and given to
aiohttp's protocol once every answer of the front before it is written; when the parser rests
between two requests, the transport itself is handed over (``set_protocol``) and the front is out
of the way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class Relay:
    """The aiohttp protocol a connection goes to, and what was parsed for it but not yet given."""

    def __init__(self, protocol: asyncio.Protocol) -> None:
        self.protocol = protocol
        self.connected = False  # connection_made was called: transport events go to aiohttp too
        self._pending = bytearray()
        self._chunked = False

    def head(self, method: bytes, target: bytes, version: str, headers: list[tuple[bytes, bytes]]) -> None:
        encoding = next((value for name, value in headers if name.lower() == b"transfer-encoding"), None)
        self._chunked = encoding is not None and b"chunked" in encoding.lower()
        self._pending += method + b" " + target + f" HTTP/{version}\r\n".encode()
        self._pending += b"".join(name + b": " + value + b"\r\n" for name, value in headers) + b"\r\n"

    def body(self, data: bytes) -> None:
        self._pending += b"%x\r\n%s\r\n" % (len(data), data) if self._chunked else data

    def complete(self) -> None:
        if self._chunked:
            self._pending += b"0\r\n\r\n"  # trailers are not replayed

    def give(self, transport: asyncio.Transport, *, between_requests: bool, on_lost: Callable[[], None]) -> bool:
        """Give aiohttp what was parsed; hand it the transport when ``between_requests`` (True: handed over), then
        ``on_lost`` once the connection ends."""
        if not self.connected:
            self.connected = True
            self.protocol.connection_made(transport)
        if self._pending:
            data, self._pending = bytes(self._pending), bytearray()
            self.protocol.data_received(data)
        if between_requests and not transport.is_closing():
            transport.set_protocol(_Handed(self.protocol, on_lost))
            return True
        return False


class _Handed(asyncio.Protocol):
    """aiohttp's protocol on a connection handed over: its events passed on; ``on_lost`` once it ends (the front
    counts the connection against ``max_connections`` until then)."""

    def __init__(self, protocol: asyncio.Protocol, on_lost: Callable[[], None]) -> None:
        self._protocol, self._on_lost = protocol, on_lost

    def data_received(self, data: bytes) -> None:
        self._protocol.data_received(data)

    def eof_received(self) -> bool | None:
        return self._protocol.eof_received()

    def pause_writing(self) -> None:
        self._protocol.pause_writing()

    def resume_writing(self) -> None:
        self._protocol.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        try:
            self._protocol.connection_lost(exc)
        finally:
            self._on_lost()
