"""A raw HTTP/1.1 sender for hostile requests: any bytes in the target, headers and body.

Real clients (http.client, aiohttp, the SDKs) refuse to send most of what an attacker sends
(control bytes, non-UTF-8 headers, lying Content-Length), so the fuzz suite writes the request
bytes itself on a keep-alive socket and reads the answer with the standard library's parser.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
from dataclasses import dataclass, field
from typing import Any

TIMEOUT = 30.0


@dataclass(frozen=True)
class RawRequest:
    method: str
    target: bytes
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes = b""
    declared_length: int | None = None  # a Content-Length that is not len(body) (oversized declarations)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    closed: bool = False  # the server closed the connection after answering

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


@dataclass
class Connection:
    host: str
    port: int
    _sock: socket.socket | None = field(default=None, repr=False)

    def send(self, request: RawRequest) -> Answer:
        """Send one request and read its answer; a connection the server closed is reopened for the next."""
        if self._sock is None:
            self._sock = socket.create_connection((self.host, self.port), timeout=TIMEOUT)
        sock = self._sock
        length = len(request.body) if request.declared_length is None else request.declared_length
        lines = [request.method.encode() + b" " + request.target + b" HTTP/1.1"]
        lines += [name + b": " + value for name, value in request.headers]
        lines.append(b"Content-Length: " + str(length).encode())
        # the server may refuse before reading everything: its answer is still there to read
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + request.body)
        response = http.client.HTTPResponse(sock, method=request.method)  # HEAD: no body follows
        try:
            response.begin()
            body = response.read()
        finally:
            response.close()
        closed = response.will_close
        if closed:
            self.close()
        headers = {name.lower(): value for name, value in response.getheaders()}
        return Answer(status=response.status, headers=headers, body=body, closed=closed)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
