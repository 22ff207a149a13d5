"""The real ``kubekms server`` over TLS: a browser-like kept-alive connection asks the front, then the console
(aiohttp), then the front's routes again through the same connection."""

from __future__ import annotations

import asyncio
import json
import ssl
from pathlib import Path

from http_front_support import read_answer
from test_server_command import server_process, write_setup

from kubekms.devenv.pki import generate_pki
from kubekms.devenv.processes import free_port, log_tail


async def test_one_tls_connection_serves_health_then_the_console_then_the_wires(tmp_path: Path) -> None:
    pki = generate_pki(tmp_path / "pki")
    port = free_port()
    config = write_setup(tmp_path, f"127.0.0.1:{port}", tls_cert=str(pki.serving_cert), tls_key=str(pki.serving_key))
    process = server_process(tmp_path, config, "--init")
    process.start()
    try:
        process.wait_until(lambda: "listening" in log_tail(process.log_path), 60, "listening")
        client = ssl.create_default_context(cafile=str(pki.ca_cert))
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        health = await read_answer(reader)
        assert (health.status, health.body) == (200, b"ok")
        writer.write(b"GET /console/sign-in HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/html\r\n\r\n")
        page = await read_answer(reader)
        assert page.status == 200 and page.headers["content-type"].startswith("text/html")
        assert b'name="csrf"' in page.body  # the console's own sign-in form, served by aiohttp
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert (await read_answer(reader)).body == b"ok"  # the same connection, routed back to the front's routes
        writer.write(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: TrentService.ListKeys\r\n"
                     b"Content-Type: application/x-amz-json-1.1\r\nContent-Length: 2\r\n\r\n{}")  # fmt: skip
        refused = await read_answer(reader)  # unsigned: the AWS wire's own refusal
        assert refused.status == 400 and json.loads(refused.body)["__type"] == "MissingAuthenticationTokenException"
        assert refused.headers["x-amzn-requestid"]
        writer.close()
    finally:
        process.stop()
    assert "Traceback" not in process.log_path.read_text()
