"""The Cloud KMS REST listener (aiohttp) against slow clients: an idle connection and one trickling its request
head are closed, one trickling its body is answered 408, within the listener's limits (aiohttp's default was an
hour, and none for a body), so they cannot pile up in the worker that serves every wire. The real listener runs
in-process with its limits shortened, so the test takes seconds."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from kubekms.devenv.processes import free_port
from kubekms.server import gcp_listener, gcp_rest
from kubekms.server.audit import AuditLog
from kubekms.server.gcp_auth import JwtVerifier
from kubekms.server.gcp_grpc import CloudKmsService
from kubekms.server.gcp_listener import CloudKmsListener
from kubekms.server.gcp_settings import GcpSettings
from kubekms.server.logs import RefusalLog
from kubekms.server.metrics import ServerMetrics
from kubekms.server.principals import PrincipalDirectory

LIMIT = 1.0
PATH = b"/v1/projects/p/locations/global/keyRings/r/cryptoKeys/k:encrypt"


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bytes:
    """Everything the server sends until it closes the connection (fails if it is still open after ``seconds``)."""
    return await asyncio.wait_for(reader.read(), seconds)


async def test_slow_and_idle_rest_connections_are_closed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gcp_listener, "IDLE_SECONDS", LIMIT)
    monkeypatch.setattr(gcp_rest, "REQUEST_SECONDS", LIMIT)
    metrics = ServerMetrics()

    async def no_keystore(project: str) -> object:
        raise AssertionError("a request that never arrived whole reached a keystore")

    service = CloudKmsService(state_dir=tmp_path, principals=PrincipalDirectory([]), verifier=JwtVerifier([]),
                              backend_for=no_keystore,  # type: ignore[arg-type]
                              audit=AuditLog(str(tmp_path / "audit.log")), metrics=metrics,
                              refusals=RefusalLog(metrics))  # fmt: skip
    rest_port = free_port()
    settings = GcpSettings(listen=f"127.0.0.1:{free_port()}", rest_listen=f"127.0.0.1:{rest_port}")
    listener = CloudKmsListener(service, settings, None, None)
    await listener.start()
    try:
        idle = await asyncio.open_connection("127.0.0.1", rest_port)
        head = await asyncio.open_connection("127.0.0.1", rest_port)
        head[1].write(b"POST " + PATH + b" HTTP/1.1\r\nHost: x\r\n")
        body = await asyncio.open_connection("127.0.0.1", rest_port)
        body[1].write(b"POST " + PATH + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 100\r\n\r\n{")  # fmt: skip
        started = time.monotonic()
        assert await _closed_within(idle[0], 10 * LIMIT) == b""
        assert await _closed_within(head[0], 10 * LIMIT) == b""
        # answered at once; aiohttp then lingers (at most 10 s) for the rest of the body before it closes
        answer = await asyncio.wait_for(body[0].readuntil(b"DEADLINE_EXCEEDED"), 10 * LIMIT)
        assert answer.startswith(b"HTTP/1.1 408") and b"Connection: close" in answer, answer
        assert time.monotonic() - started < 10 * LIMIT
        for _, writer in (idle, head, body):
            writer.close()
            await writer.wait_closed()
    finally:
        await listener.stop(grace=0)
