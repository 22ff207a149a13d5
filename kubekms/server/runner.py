"""Run the server until SIGTERM/SIGINT: listen (TLS when configured), maintenance, audit flushing."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import ipaddress
import logging
import os
import signal
import socket
import ssl
from collections.abc import Awaitable, Callable

from aiohttp import web

from kubekms.private_files import refuse_shared_directory
from kubekms.server.app import KMSApplication
from kubekms.server.audit import AuditLog
from kubekms.server.config import ServerConfig
from kubekms.server.gcp_listener import CloudKmsListener, cloud_kms_listener
from kubekms.server.http_front import HttpFront, HttpLimits
from kubekms.server.logs import MalformedHttpFilter
from kubekms.server.principals import load_principals
from kubekms.server.shared_database import SharedDatabase
from kubekms.server.workers import WORKER_HEADER, WorkerListener, supervise

log = logging.getLogger("kubekms.server")

AUDIT_FLUSH_INTERVAL = 0.2


class ServerSetupError(RuntimeError):
    """The server cannot start (bad state dir, missing --init, TLS files...)."""


_LISTEN_HINTS = {
    errno.EADDRINUSE: "another process is listening there: stop it, or set {setting} to a free port",
    errno.EADDRNOTAVAIL: "no network interface of this machine has that address: set {setting} to one it has "
    "(or 0.0.0.0)",
    errno.EACCES: "ports below 1024 need privileges (CAP_NET_BIND_SERVICE): set {setting} to a port from 1024 up",
}


def listen_refusal(setting: str, host: str, port: int, error: OSError) -> ServerSetupError:
    """One line naming the address a listener could not take, the config setting it came from and what to do."""
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    hint = _LISTEN_HINTS.get(error.errno or 0, "check {setting}").format(setting=setting)
    reason = os.strerror(error.errno) if error.errno else str(error)  # uvloop's own text repeats the address
    return ServerSetupError(f"cannot listen on {address} ({setting}): {reason}; {hint}")


def probe_listen(setting: str, host: str, port: int) -> None:
    """A ServerSetupError (listen_refusal) unless a plain socket can bind ``host:port`` now.

    Sockets with SO_REUSEPORT (the workers' and, by default, gRPC's) would bind beside another process of the same
    user listening with SO_REUSEPORT too, such as a second kubekms server, and silently share its connections: the
    probe sets only SO_REUSEADDR (a restart's TIME_WAIT connections do not block it), so it fails on any listener.
    """
    if port == 0:
        return
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise listen_refusal(setting, host, port, error) from None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def tls_context(config: ServerConfig) -> ssl.SSLContext | None:
    if config.tls_cert is None or config.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(config.tls_cert, config.tls_key)
    except (OSError, ssl.SSLError) as error:
        raise ServerSetupError(f"cannot load TLS certificate/key: {error}") from None
    return context


async def _every(interval: float, action: Callable[[], Awaitable[None] | None], what: str) -> None:
    """Run ``action`` every ``interval`` seconds; a failure is logged and retried, never ends the loop."""
    while True:
        await asyncio.sleep(interval)
        try:
            outcome = action()
            if outcome is not None:
                await outcome
        except Exception:
            log.exception(f"{what} failed; retrying in {interval:g}s")


def freeze_start_up_heap() -> None:
    """What start-up loaded (botocore's models, aiohttp, the keystores: over 100,000 objects) lives as long as the
    process: frozen, the collector no longer walks it, and a full collection (a 40 ms pause amid requests, measured
    in ``bench/http_layer_bench.py --in-process``) becomes a short one. Collected first, so no garbage is kept."""
    gc.collect()
    gc.freeze()


async def _name_the_worker(request: web.Request, response: web.StreamResponse) -> None:
    response.headers[WORKER_HEADER] = str(os.getpid())


async def _console_runner(application: KMSApplication, front: HttpFront, *, named: bool) -> web.AppRunner | None:
    """The web console's aiohttp server (no listener of its own): the front hands it ``/console`` connections."""
    app = application.console_app(front.handler)
    if app is None:
        return None
    if named:
        app.on_response_prepare.append(_name_the_worker)
    malformed_http = MalformedHttpFilter(application.refusals)
    logging.getLogger("aiohttp.server").addFilter(malformed_http)
    app.on_cleanup.append(lambda _: _remove_filter(malformed_http))
    # lingering_time=0: a body the server did not read (refused as too large) closes the connection, not drained
    runner = web.AppRunner(app, access_log=None, handle_signals=False, lingering_time=0)
    await runner.setup()
    assert runner.server is not None
    front.handoff = runner.server
    return runner


async def _remove_filter(malformed_http: MalformedHttpFilter) -> None:
    logging.getLogger("aiohttp.server").removeFilter(malformed_http)


async def serve(config: ServerConfig, *, init: bool, worker: WorkerListener | None = None) -> None:
    """One process serving; with ``workers`` > 1 the supervisor of that many (``worker``: one of them)."""
    if not config.state_dir.is_dir():
        if not init:
            raise ServerSetupError(f"state_dir {config.state_dir} does not exist; start once with --init")
        config.state_dir.mkdir(mode=0o700, parents=True)
    refuse_shared_directory(config.state_dir, "state_dir")
    principals = load_principals(config.principals_file)
    ssl_context = tls_context(config)
    if worker is None and config.workers > 1:  # console sessions are shared through the state dir (issue 17)
        await supervise(config, init=init)
        return
    leader = worker is None or worker.leader  # maintenance and the Cloud KMS listeners: one process only
    audit = AuditLog(config.audit_log, head_file=worker.audit_head if worker else None)
    database_url = config.database_url()
    shared_database = None if database_url is None else SharedDatabase(database_url)
    application = KMSApplication(
        state_dir=config.state_dir,
        principals=principals,
        audit=audit,
        init=init,
        cmk_limit=config.cmk_limit,
        max_body_bytes=config.max_body_bytes,
        console=config.console,
        database_url=database_url,
        shared_database=shared_database,
    )
    await application.open_existing_projects()
    front = HttpFront(application.handler(), application.refusals,
                      HttpLimits(max_body_bytes=config.max_body_bytes,
                                 max_connections=config.max_connections))  # fmt: skip
    if worker is not None:
        front.extra_headers[WORKER_HEADER] = str(os.getpid())
    console = await _console_runner(application, front, named=worker is not None)
    # the Cloud KMS listeners before the HTTP front: once /healthz answers, every listener of the server does
    cloud_kms: CloudKmsListener | None = None
    if config.gcp is not None and leader:  # the Cloud KMS API (issue 16): same keystores, principals, audit log
        cloud_kms = cloud_kms_listener(config, principals, application, audit, ssl_context)
        await cloud_kms.start()
    if worker is None:
        try:
            await front.listen(host=config.host, port=config.port, ssl=ssl_context)
        except OSError as error:
            raise listen_refusal("listen", config.host, config.port, error) from None
    scheme = "https" if ssl_context else "http"
    if ssl_context is None and not is_loopback(config.host):
        log.warning(
            "serving plain HTTP beyond loopback: AK/SK signatures protect integrity, but data keys cross the network "
            "in clear text; configure tls_cert and tls_key",
            extra={"fields": {"listen": config.host}},
        )
    log.info(
        "kubekms server listening",
        extra={"fields": {"url": f"{scheme}://{config.host}:{config.port}", "principals": len(principals)}},
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    background = [asyncio.create_task(_every(AUDIT_FLUSH_INTERVAL, application.flush_audit, "writing the audit log"))]
    if leader:
        background.append(asyncio.create_task(_every(config.maintenance_interval, application.run_due_work,
                                                     "maintenance")))  # fmt: skip
    freeze_start_up_heap()
    if worker is not None:
        await worker.ready()  # every worker is set up: all accept connections from now (queued by their sockets)
        await front.listen(sock=worker.sock, ssl=ssl_context)
    if cloud_kms is not None:
        background.append(asyncio.create_task(_every(config.maintenance_interval, cloud_kms.service.run_due_work,
                                                     "Cloud KMS rotation")))  # fmt: skip
    try:
        await stop.wait()
        log.info("stopping: finishing requests in flight")
    finally:
        for task in background:
            task.cancel()
        for task in background:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await front.stop()
        if console is not None:
            await console.cleanup()
        if cloud_kms is not None:
            await cloud_kms.stop()
        await application.close()
        if shared_database is not None:
            await shared_database.close()
        log.info("kubekms server stopped")
