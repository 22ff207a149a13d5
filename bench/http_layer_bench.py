"""The server's HTTP front against aiohttp and others on our real request path: ``python bench/http_layer_bench.py``.

The same request path (:meth:`KMSApplication.handler`: the AWS wire's Pipeline with SigV4,
principals, keystore, audit, metrics, and the ``/healthz`` route) is served by each HTTP layer in
turn, one process each with uvloop, and driven by wrk replaying a pre-signed
``TrentService.Decrypt`` and ``GET /healthz`` at 16 and 64 connections:

- ``front``: the server as it runs (:mod:`kubekms.server.http_front`, httptools);
- ``aiohttp``: aiohttp's server, each request adapted to the front's types (as the console's
  connections are; before the front, the wires read aiohttp's requests directly);
- ``uvicorn``: uvicorn with httptools, an ASGI adapter;
- ``granian``: granian's Rust HTTP server embedded in the loop, the same ASGI adapter.

A layer that is not installed (``pip install uvicorn granian``) is skipped with a message. Prints
req/s, p50, p99 and server CPU per request, and each layer's ratio to aiohttp's.

``--in-process N`` measures instead the server's own front and request path in this one process,
without sockets, wrk or the kernel: ``N`` requests one after another on one connection whose
transport is in memory (each answer written sends the next request), CPU per request for
``/healthz``, AWS-wire GenerateDataKey and Decrypt, with the metrics in multiprocess mode as a
worker of the server keeps them (a fresh ``PROMETHEUS_MULTIPROC_DIR`` unless one is set).
Steadier than wrk on a busy machine: run it from two checkouts (``PYTHONPATH=<checkout>``, from a
directory outside both), interleaved, for an A/B of a change to the front or the wires.
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
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from kubekms.server.http_front import Handler, HttpFront
from kubekms.server.http_messages import HttpRequest, from_aiohttp, to_aiohttp
from kubekms.server.metrics import MULTIPROCESS_DIR_VARIABLE

LAYERS = ("aiohttp", "front", "uvicorn", "granian")
NEEDS = {"uvicorn": "uvicorn", "granian": "granian"}


# ----------------------------------------------------------------------------- the served side


def build_application(state: Path) -> tuple[Any, Handler]:
    """Our KMSApplication on the launcher's state and its request handler."""
    from kubekms.server.app import KMSApplication
    from kubekms.server.audit import AuditLog
    from kubekms.server.console.settings import DEFAULTS
    from kubekms.server.principals import load_principals

    principals = load_principals(state / "principals.yaml")
    audit = AuditLog(str(state / "audit.log"))
    application = KMSApplication(state_dir=state / "keystore", principals=principals, audit=audit,
                                 console=dataclasses.replace(DEFAULTS, enabled=False))  # fmt: skip
    return application, application.handler()


def aiohttp_app(handle: Handler) -> web.Application:
    async def adapt(request: web.Request) -> web.Response:
        return to_aiohttp(await handle(await from_aiohttp(request, 64 * 1024)))

    app = web.Application()
    app.router.add_route("*", "/{tail:[\\s\\S]*}", adapt)
    return app


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
        headers = CIMultiDictProxy(CIMultiDict((k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]))
        client = scope.get("client")
        request = HttpRequest(scope["method"], path.decode("latin-1"), headers, b"".join(chunks),
                              client[0] if client else None)  # fmt: skip
        response = await handle(request)
        answer_headers = [*response.headers.items(), ("Content-Length", str(len(response.body)))]
        await send({"type": "http.response.start", "status": response.status,
                    "headers": [(k.encode(), v.encode()) for k, v in answer_headers]})  # fmt: skip
        await send({"type": "http.response.body", "body": response.body})

    return app


async def serve(layer: str, state: Path, port: int) -> None:
    application, handle = build_application(state)
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
        runner = web.AppRunner(aiohttp_app(handle), access_log=None, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
        await stop.wait()
        await runner.cleanup()
    elif layer == "front":
        front = HttpFront(handle, application.refusals)
        await front.listen(host="127.0.0.1", port=port)
        await stop.wait()
        await front.stop()
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


class MemoryTransport(asyncio.Transport):
    """One client connection in memory: each answer written sends ``request`` again, ``count`` answers in all."""

    def __init__(self, protocol: asyncio.Protocol, request: bytes, count: int) -> None:
        super().__init__()
        self._protocol, self._request, self._left = protocol, request, count
        self.done: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._left -= 1
        if self._left > 0:
            asyncio.get_running_loop().call_soon(self._protocol.data_received, self._request)
        elif not self.done.done():
            self.done.set_result(bytes(data))  # the last answer

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        if not self.done.done():
            self.done.set_exception(RuntimeError("the front closed the connection"))


async def in_process(state: Path, requests: dict[str, bytes], count: int, rounds: int) -> dict[str, list[float]]:
    """CPU µs per request of each request, ``rounds`` runs of ``count`` after one unmeasured run."""
    application, handle = build_application(state)
    await application.open_existing_projects()
    front = HttpFront(handle, application.refusals)
    results: dict[str, list[float]] = {name: [] for name in requests}
    for round_number in range(rounds + 1):
        for name, request in requests.items():
            connection = front()
            transport = MemoryTransport(connection, request, count)
            connection.connection_made(transport)
            started = time.process_time()
            connection.data_received(request)
            last = await transport.done
            elapsed = time.process_time() - started
            if not last.startswith(b"HTTP/1.1 200 "):
                raise SystemExit(f"{name}: {last[:300]!r}")
            if round_number > 0:
                results[name].append(elapsed / count * 1e6)
            connection.connection_lost(None)
            application.flush_audit()
    await application.close()
    return results


def request_bytes(request: Any) -> bytes:
    """A :class:`wrk_load.PresignedRequest` as the bytes a client sends."""
    head = f"{request.method} {request.path} HTTP/1.1\r\n" + "".join(
        f"{name}: {value}\r\n" for name, value in request.headers.items() if name.lower() != "content-length"
    )
    return f"{head}Content-Length: {len(request.body)}\r\n\r\n".encode() + request.body


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


def run_in_process(args: argparse.Namespace, state: Path, target: Any, key_id: str, body: dict[str, str]) -> None:
    import uvloop
    from aws_bench import presigned

    requests = {
        "healthz": b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: wrk\r\n\r\n",
        "GenerateDataKey": request_bytes(presigned(target, "GenerateDataKey", {"KeyId": key_id, "NumberOfBytes": 32})),
        "Decrypt": request_bytes(presigned(target, "Decrypt", body)),
    }
    results = uvloop.run(in_process(state, requests, args.in_process, args.rounds))
    print(f"\nin process, no sockets: CPU us per request ({args.in_process:,} requests a run)")
    for name, runs in results.items():
        print(f"  {name:<16}{min(runs):>7.1f}  (runs: {', '.join(f'{run:.1f}' for run in runs)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", choices=LAYERS, help=argparse.SUPPRESS)
    parser.add_argument("--state", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--duration", type=float, default=5.0, help="Measured seconds per run (default 5).")
    parser.add_argument("--warmup", type=float, default=1.0, help="Unmeasured seconds first (default 1).")
    parser.add_argument("--clients", type=int, nargs="+", default=[16, 64], help="Concurrent connections (16 64).")
    parser.add_argument("--layers", nargs="+", default=list(LAYERS), choices=LAYERS)
    parser.add_argument(
        "--in-process",
        type=int,
        default=0,
        metavar="N",
        help="Measure the server's front in this process without sockets, N requests a run.",
    )
    parser.add_argument("--rounds", type=int, default=3, help="Measured runs with --in-process (default 3).")
    args = parser.parse_args()
    if args.in_process and MULTIPROCESS_DIR_VARIABLE not in os.environ:
        # prometheus_client chooses its multiprocess values when it is imported: run again with the directory set
        with tempfile.TemporaryDirectory(prefix="kubekms-metrics-") as directory:
            environment = {**os.environ, MULTIPROCESS_DIR_VARIABLE: directory}
            raise SystemExit(subprocess.call([sys.executable, __file__, *sys.argv[1:]], env=environment))
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
        if args.in_process:
            run_in_process(args, state, Target("front", launcher.endpoint, credentials.access_key,
                                               credentials.secret_key, 0), key_id, body)  # fmt: skip
            return
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
