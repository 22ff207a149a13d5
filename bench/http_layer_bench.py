"""aiohttp against leaner HTTP servers on our real request path: ``python bench/http_layer_bench.py``.

The same request path (our AWS wire's Pipeline: SigV4, principals, keystore, audit, metrics) is
served by each HTTP layer in turn, one process each with uvloop, and driven by wrk replaying a
pre-signed ``TrentService.Decrypt`` and ``GET /healthz`` at 16 and 64 connections:

- ``aiohttp``: the server as it runs (:meth:`KMSApplication.build`);
- ``httptools``: a bare asyncio protocol with the httptools parser (the parser uvicorn uses);
- ``uvicorn``: uvicorn with httptools, an ASGI adapter;
- ``granian``: granian's Rust HTTP server embedded in the loop, the same ASGI adapter.

The non-aiohttp layers hand the wire a :class:`PlainRequest` holding what the wire reads of an
aiohttp request (method, raw path, headers, body, peer) and write back the aiohttp Response the
wire rendered, so the request path is the server's own, not a copy. A layer that is not installed
(``pip install uvicorn httptools granian``) is skipped with a message. Prints req/s, p50, p99 and
server CPU per request, and each layer's ratio to aiohttp's.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import dataclasses
import functools
import importlib.util
import os
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from http import HTTPStatus
from pathlib import Path
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

LAYERS = ("aiohttp", "httptools", "uvicorn", "granian")
NEEDS = {"httptools": "httptools", "uvicorn": "uvicorn", "granian": "granian"}

Handler = Callable[["PlainRequest"], Awaitable[web.Response]]


# ----------------------------------------------------------------------------- the served side


@dataclasses.dataclass
class PlainRequest:
    """What the wires read of an aiohttp request, filled in by another server's parser."""

    method: str
    raw_path: str
    headers: CIMultiDict[str]
    body: bytes
    remote: str | None

    @property
    def content_length(self) -> int:
        return len(self.body)

    async def read(self) -> bytes:
        return self.body


def response_head(response: web.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    body = response.body if isinstance(response.body, bytes) else b""
    headers = [(name, value) for name, value in response.headers.items() if name.lower() != "content-length"]
    return response.status, [*headers, ("Content-Length", str(len(body)))], body


def build_application(state: Path) -> tuple[Any, web.Application, Handler]:
    """Our KMSApplication on the launcher's state, its aiohttp app, and the AWS wire's handler for other layers."""
    from kubekms.server.app import KMSApplication
    from kubekms.server.audit import AuditLog
    from kubekms.server.aws_wire import AwsWire
    from kubekms.server.console.settings import DEFAULTS
    from kubekms.server.pipeline import Pipeline
    from kubekms.server.principals import load_principals

    principals = load_principals(state / "principals.yaml")
    audit = AuditLog(str(state / "audit.log"))
    application = KMSApplication(state_dir=state / "keystore", principals=principals, audit=audit,
                                 console=dataclasses.replace(DEFAULTS, enabled=False))  # fmt: skip
    pipeline = Pipeline(wire=AwsWire(principals), principals=principals, backend_for=application.backend_for,
                        audit=audit, metrics=application.metrics,
                        refusals=application.refusals)  # type: ignore[arg-type]  # fmt: skip

    async def handle(request: PlainRequest) -> web.Response:
        if request.method == "GET" and request.raw_path == "/healthz":
            return web.Response(text="ok", headers={"X-Request-Id": os.urandom(16).hex()})
        return await pipeline.handle(request)  # type: ignore[arg-type]

    return application, application.build(), handle


class HttpToolsProtocol(asyncio.Protocol):
    """A bare keep-alive HTTP/1.1 server on httptools' parser; one request at a time per connection."""

    def __init__(self, handle: Handler) -> None:
        import httptools

        self._handle = handle
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._headers: CIMultiDict[str] = CIMultiDict()
        self._body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        import httptools

        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            assert self._transport is not None
            self._transport.close()

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.add(name.decode("latin-1"), value.decode("latin-1"))

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        assert self._transport is not None
        peer = self._transport.get_extra_info("peername")
        request = PlainRequest(self._parser.get_method().decode(), self._url.decode("latin-1"), self._headers,
                               b"".join(self._body), peer[0] if peer else None)  # fmt: skip
        self._url, self._headers, self._body = b"", CIMultiDict(), []
        asyncio.get_running_loop().create_task(self._answer(request))

    async def _answer(self, request: PlainRequest) -> None:
        status, headers, body = response_head(await self._handle(request))
        lines = "".join(f"{name}: {value}\r\n" for name, value in headers)
        assert self._transport is not None
        self._transport.write(f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n{lines}\r\n".encode() + body)


def asgi_app(handle: Handler) -> Callable[..., Awaitable[None]]:
    async def app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        path = scope.get("raw_path") or scope["path"].encode()
        if scope.get("query_string"):
            path += b"?" + scope["query_string"]
        headers: CIMultiDict[str] = CIMultiDict((k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"])
        client = scope.get("client")
        request = PlainRequest(scope["method"], path.decode("latin-1"), headers, b"".join(chunks),
                               client[0] if client else None)  # fmt: skip
        status, answer_headers, body = response_head(await handle(request))
        await send({"type": "http.response.start", "status": status,
                    "headers": [(k.encode(), v.encode()) for k, v in answer_headers]})  # fmt: skip
        await send({"type": "http.response.body", "body": body})

    return app


async def serve(layer: str, state: Path, port: int) -> None:
    application, aiohttp_app, handle = build_application(state)
    await application.open_existing_projects()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)

    async def flush_audit() -> None:  # as the server does, every 0.2 s
        while True:
            await asyncio.sleep(0.2)
            application.flush_audit()

    flusher = asyncio.create_task(flush_audit())
    if layer == "aiohttp":
        runner = web.AppRunner(aiohttp_app, access_log=None, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
        await stop.wait()
        await runner.cleanup()
    elif layer == "httptools":
        server = await loop.create_server(lambda: HttpToolsProtocol(handle), "127.0.0.1", port, backlog=1024)
        await stop.wait()
        server.close()
    elif layer == "uvicorn":
        import uvicorn

        config = uvicorn.Config(asgi_app(handle), host="127.0.0.1", port=port, http="httptools", lifespan="off",
                                access_log=False, log_level="warning", backlog=1024)  # fmt: skip
        uvicorn_server = uvicorn.Server(config)
        task = asyncio.create_task(uvicorn_server.serve())
        await stop.wait()
        uvicorn_server.should_exit = True
        await task
    elif layer == "granian":
        from granian.constants import Interfaces
        from granian.server.embed import Server

        granian_server = Server(asgi_app(handle), address="127.0.0.1", port=port, interface=Interfaces.ASGI,
                                backlog=1024, log_enabled=False)  # fmt: skip
        task = asyncio.create_task(granian_server.serve())
        await stop.wait()
        granian_server.stop()
        await task
    flusher.cancel()
    await application.close()


def serve_main(layer: str, state: Path, port: int) -> None:
    import uvloop

    uvloop.run(serve(layer, state, port))


# ----------------------------------------------------------------------------- the conductor


@contextlib.contextmanager
def layer_process(layer: str, state: Path, port: int) -> Iterator[int]:
    from kubekms.devenv.processes import ManagedProcess

    log = state / f"{layer}.log"
    process = ManagedProcess(f"http-{layer}", [sys.executable, __file__, "--serve", layer, "--state", str(state),
                                               "--port", str(port)], log)  # fmt: skip
    process.start()
    try:
        process.wait_until(lambda: _answers(port), 60, "answering /healthz")
        assert process.process is not None
        yield process.process.pid
    finally:
        process.stop()


def _append_cpu(readings: list[float], pid: int) -> None:
    from server_bench import cpu_seconds

    readings.append(cpu_seconds(pid))


def _answers(port: int) -> bool:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
        return bool(answer.status == 200)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", choices=LAYERS, help=argparse.SUPPRESS)
    parser.add_argument("--state", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--duration", type=float, default=5.0, help="Measured seconds per run (default 5).")
    parser.add_argument("--warmup", type=float, default=1.0, help="Unmeasured seconds first (default 1).")
    parser.add_argument("--clients", type=int, nargs="+", default=[16, 64], help="Concurrent connections (16 64).")
    parser.add_argument("--layers", nargs="+", default=list(LAYERS), choices=LAYERS)
    args = parser.parse_args()
    if args.serve:
        serve_main(args.serve, args.state, args.port)
        return
    run(args)


def run(args: argparse.Namespace) -> None:
    import boto3
    from aws_bench import REGION, Target, presigned
    from server_bench import cpu_seconds
    from wrk_load import PresignedRequest, run_wrk, wrk_binary

    from kubekms.devenv.kmsserver import KMSServer
    from kubekms.devenv.processes import free_port
    from kubekms.providers import Credentials

    wrk = wrk_binary()
    if wrk is None:
        raise SystemExit("this bench needs wrk")
    layers = [layer for layer in args.layers if layer not in NEEDS or importlib.util.find_spec(NEEDS[layer])]
    for layer in set(args.layers) - set(layers):
        print(f"{layer}: not installed (pip install {NEEDS[layer]}), skipped")
    results: dict[tuple[str, str, int], tuple[float, float, float, float, int]] = {}
    with tempfile.TemporaryDirectory(prefix="kubekms-http-") as directory:
        state = Path(directory)
        launcher = KMSServer(state)  # principals and the keystore, made by the real server once
        launcher.start()
        credentials = Credentials.from_file(launcher.credentials_file("admin"))
        kms = boto3.client("kms", endpoint_url=launcher.endpoint, region_name=REGION,
                           aws_access_key_id=credentials.access_key,
                           aws_secret_access_key=credentials.secret_key)  # fmt: skip
        key_id = kms.create_key(Description="http layers")["KeyMetadata"]["KeyId"]
        blob = kms.generate_data_key(KeyId=key_id, NumberOfBytes=32)["CiphertextBlob"]
        launcher.stop()
        body = {"KeyId": key_id, "CiphertextBlob": base64.b64encode(blob).decode()}
        for layer in layers:
            port = free_port()
            endpoint = f"http://127.0.0.1:{port}"
            target = Target(layer, endpoint, credentials.access_key, credentials.secret_key, 0)
            requests = {
                "healthz": PresignedRequest("GET", "/healthz", {"Host": f"127.0.0.1:{port}"}, b""),
                "Decrypt": presigned(target, "Decrypt", body),
            }
            with layer_process(layer, state, port) as pid:
                for name, request in requests.items():
                    for clients in args.clients:
                        before: list[float] = []
                        result = run_wrk(wrk, endpoint, request, clients, warmup=args.warmup, duration=args.duration,
                                         between=functools.partial(_append_cpu, before, pid))  # fmt: skip
                        cpu_us = (cpu_seconds(pid) - before[0]) / max(result.requests, 1) * 1e6
                        results[(layer, name, clients)] = (result.rps, result.p50_ms, result.p99_ms, cpu_us,
                                                           result.errors)  # fmt: skip
                        print(f"  {layer} {name} x{clients}: {result.rps:,.0f} req/s", flush=True)
                        time.sleep(0.2)
    print(f"\n{'layer':<11}{'request':<9}{'clients':>8}{'req/s':>9}{'p50 ms':>8}{'p99 ms':>8}{'CPU us':>8}"
          f"{'vs aiohttp':>11}{'errors':>8}")  # fmt: skip
    for (layer, name, clients), (rps, p50, p99, cpu_us, errors) in results.items():
        base = results.get(("aiohttp", name, clients))
        ratio = f"{rps / base[0]:>10.2f}x" if base else f"{'-':>11}"
        print(f"{layer:<11}{name:<9}{clients:>8}{rps:>9,.0f}{p50:>8.2f}{p99:>8.2f}{cpu_us:>8.0f}{ratio}{errors:>8}")


if __name__ == "__main__":
    main()
