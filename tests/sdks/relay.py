"""A loopback TCP relay for the official-SDK tests: counts the connections a client opens and keeps what it sends.

Observation only, not a fake: the bytes pass unchanged both ways between the SDK and the real server.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Relay:
    """A loopback TCP relay to the server: counts the connections clients open and keeps what they send."""

    upstream: tuple[str, int]
    listener: socket.socket = field(default_factory=lambda: socket.create_server(("127.0.0.1", 0)))
    sent: list[bytearray] = field(default_factory=list)  # per connection, client -> server bytes
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self.sent)

    def start(self) -> None:
        self._spawn(self._accept)

    def close(self) -> None:
        self.listener.close()

    def request_heads(self) -> list[dict[str, str]]:
        """Each request's headers (lower-case names), parsed from the relayed bytes by Content-Length."""
        heads: list[dict[str, str]] = []
        with self._lock:
            streams = [bytes(stream) for stream in self.sent]
        for stream in streams:
            while (end := stream.find(b"\r\n\r\n")) >= 0:
                lines = stream[:end].decode("latin-1").split("\r\n")
                head = {"": lines[0]}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    head[name.strip().lower()] = value.strip()
                heads.append(head)
                stream = stream[end + 4 + int(head.get("content-length", "0")) :]
        return heads

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            server = socket.create_connection(self.upstream)
            record = bytearray()
            with self._lock:
                self.sent.append(record)
            self._spawn(self._pipe, client, server, record)
            self._spawn(self._pipe, server, client, None)

    def _pipe(self, source: socket.socket, destination: socket.socket, record: bytearray | None) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if record is not None:
                    with self._lock:
                        record += data
                destination.sendall(data)
        with contextlib.suppress(OSError):
            destination.shutdown(socket.SHUT_WR)
