"""An in-process HTTP front on a real socket, and a plain reader of HTTP/1.1 answers for raw-socket tests."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from kubekms.devenv.pki import generate_pki
from kubekms.server.http_front import Handler, HttpFront, HttpLimits
from kubekms.server.logs import RefusalLog
from kubekms.server.metrics import ServerMetrics


@dataclass
class Front:
    front: HttpFront
    port: int
    metrics: ServerMetrics

    def refused(self, reason: str) -> float:
        """The refusals counted for ``reason`` on the ``http`` wire."""
        prefix = f'kubekms_server_refused_requests_total{{reason="{reason}",wire="http"}}'
        lines = self.metrics.render().decode().splitlines()
        return sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith(prefix))


@contextlib.asynccontextmanager
async def running_front(
    handler: Handler,
    *,
    limits: HttpLimits | None = None,
    tls: ssl.SSLContext | None = None,
    handoff: Callable[[], asyncio.Protocol] | None = None,
) -> AsyncIterator[Front]:
    metrics = ServerMetrics()
    front = HttpFront(handler, RefusalLog(metrics), limits or HttpLimits(), handoff=handoff)
    server = await front.listen(host="127.0.0.1", port=0, ssl=tls)
    try:
        yield Front(front, server.sockets[0].getsockname()[1], metrics)
    finally:
        await front.stop(grace=5)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes


async def read_answer(reader: asyncio.StreamReader, *, head_request: bool = False) -> Answer:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")[:-2]
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    length = 0 if head_request else int(headers.get("content-length", "0"))
    return Answer(int(status_line.split(" ")[1]), headers, await reader.readexactly(length))


async def closed_by_server(reader: asyncio.StreamReader, within: float = 5.0) -> bool:
    """True when the server closes the connection (EOF) within ``within`` seconds, sending nothing more."""
    async with asyncio.timeout(within):
        return await reader.read() == b""


def tls_contexts(directory: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A server context with a fresh serving certificate for 127.0.0.1, and a client context trusting it."""
    pki = generate_pki(directory)
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(pki.serving_cert, pki.serving_key)
    client = ssl.create_default_context(cafile=str(pki.ca_cert))
    return server, client
