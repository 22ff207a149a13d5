"""Run the plugin: gRPC on a 0600 Unix socket, health and metrics on loopback, the backend poller.

SIGTERM or SIGINT stops accepting calls, lets in-flight calls finish (drain timeout)
and removes the socket. :func:`run` serves on uvloop with the start-up heap frozen.

gRPC is its threaded server, not grpc.aio: grpc.aio hands each of a call's 4 completions from
gRPC's polling thread to the event loop through a socket write and a wake-up, most of a Status
call's cost (``bench/plugin_bench.py``). Calls run on gRPC's threads (Status on threads of its
own); the event loop runs the backend calls, the poller and the health server.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import signal
import socket
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import cast

import grpc
import uvloop
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from kubekms.providers import BackendConfig, open_backend
from kubekms_plugin.call_threads import CallThreads
from kubekms_plugin.config import PluginConfig
from kubekms_plugin.keyring import Keyring, KeyringError
from kubekms_plugin.metrics import PluginMetrics
from kubekms_plugin.service import KeyManagementService, rpc_handler

logger = logging.getLogger(__name__)

MAX_MESSAGE = 64 * 1024  # far above any valid call (1 KiB ciphertext + 32 KiB annotations)
FIRST_POLL_RETRY = 1.0
CALL_THREADS = 4  # Encrypt and Decrypt, plus one per call waiting for the backend (call_threads.py)
STATUS_THREADS = 4  # Status on threads of its own: it never waits behind Encrypt or Decrypt


class SocketInUse(RuntimeError):
    """Another process is serving on the socket path."""


def prepare_socket(path: Path) -> None:
    """Refuse a live socket, replace a stale one, never touch anything that is not a socket."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not path.exists() and not path.is_symlink():
        return
    if not stat.S_ISSOCK(path.lstat().st_mode):
        raise SocketInUse(f"{path} exists and is not a socket; refusing to replace it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        path.unlink(missing_ok=True)  # stale: left by a process that is gone
        return
    finally:
        probe.close()
    raise SocketInUse(f"{path} is served by a running process; stop it first or use another path")


def remove_own_socket(path: Path, bound: os.stat_result) -> None:
    """Unlink ``path`` only while it is still the socket this process bound: once this plugin stopped
    listening, a successor may have found the path stale and bound its own socket there."""
    try:
        found = path.lstat()
    except FileNotFoundError:
        return
    if (found.st_dev, found.st_ino) == (bound.st_dev, bound.st_ino):
        path.unlink(missing_ok=True)


def backend_name(config: BackendConfig) -> str:
    return f"{config.provider} {config.endpoint}".strip()


def health_app(keyring: Keyring, metrics: PluginMetrics) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        reason = keyring.health()
        return web.Response(text=reason, status=200 if reason == "ok" else 503)

    async def metrics_page(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def status(_: web.Request) -> web.Response:
        reason = keyring.health()
        body = {
            "key_id": keyring.reported_key_id(),
            "key_version": keyring.current.version if keyring.current else 0,
            "healthy": reason == "ok",
            "reason": reason,
        }
        return web.Response(text=json.dumps(body), content_type="application/json")

    app = web.Application()
    app.add_routes([web.get("/healthz", healthz), web.get("/metrics", metrics_page), web.get("/status", status)])
    return app


async def poll_forever(keyring: Keyring, interval: float) -> None:
    """Learn rotations by polling; retry quickly until the first KEK exists; renew a KEK before its max_age."""
    while True:
        try:
            await keyring.refresh()
        except KeyringError as error:
            logger.warning("backend poll failed", extra={"fields": {"reason": error.message}})
        except Exception:
            logger.exception("backend poll failed unexpectedly")
        await asyncio.sleep(poll_delay(keyring, interval))


def poll_delay(keyring: Keyring, interval: float) -> float:
    """Until the next poll: ``interval``, sooner until the first KEK exists or when the current one is due
    for renewal by its age (a renewal that failed is retried at ``interval``, as any poll)."""
    if keyring.current is None:
        return min(interval, FIRST_POLL_RETRY)
    due = keyring.renewal_in()
    return min(interval, due) if due is not None and due > 0 else interval


async def serve(config: PluginConfig, *, stop: asyncio.Event | None = None) -> None:
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    backend = await open_backend(config.backend)
    metrics = PluginMetrics()
    keyring = Keyring(backend, config.key, config.kek, metrics, backend_name=backend_name(config.backend))
    prepare_socket(config.socket)
    calls = CallThreads(CALL_THREADS, "grpc-call")
    server = grpc.server(
        cast(ThreadPoolExecutor, calls),  # typed as one; gRPC only submits to it
        options=[("grpc.max_receive_message_length", MAX_MESSAGE), ("grpc.max_send_message_length", MAX_MESSAGE)],
    )
    status_threads = ThreadPoolExecutor(STATUS_THREADS, thread_name_prefix="grpc-status")
    service = KeyManagementService(keyring, metrics, loop, calls)
    server.add_generic_rpc_handlers((rpc_handler(service, status_threads),))
    previous_umask = os.umask(0o177)  # the socket is born 0600: no window with wider access
    try:
        server.add_insecure_port(f"unix://{config.socket}")
        server.start()
    finally:
        os.umask(previous_umask)
    # checked, not chmod-ed: chmod follows a link someone may have put at the path since the bind
    bound = config.socket.lstat()
    if not stat.S_ISSOCK(bound.st_mode) or stat.S_IMODE(bound.st_mode) != 0o600:
        raise SocketInUse(f"{config.socket} is not this plugin's 0600 socket any more; refusing to serve on it")

    runner = web.AppRunner(health_app(keyring, metrics), access_log=None)
    await runner.setup()
    host, port = config.health_host_port
    await web.TCPSite(runner, host, port).start()
    poller = asyncio.create_task(poll_forever(keyring, config.poll_interval))
    # Everything loaded so far (providers, grpc, aiohttp, protobuf: ~70,000 objects) lives as long as
    # the process; frozen, a full collection no longer walks it, which was a 30 ms pause in a call's path.
    gc.freeze()
    logger.info(
        "kubekms plugin serving",
        extra={
            "fields": {
                "socket": str(config.socket),
                "health": config.health_address,
                "backend": backend_name(config.backend),
            }
        },
    )
    try:
        await stop.wait()
    finally:
        logger.info("stopping: draining in-flight calls", extra={"fields": {"grace_seconds": config.drain_timeout}})
        # Waited for on a thread: the calls being drained may still need the loop (the backend).
        await asyncio.to_thread(server.stop(grace=config.drain_timeout).wait)
        poller.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await poller
        await runner.cleanup()
        await backend.close()
        remove_own_socket(config.socket, bound)


def run(config: PluginConfig) -> None:
    """Serve until SIGTERM or SIGINT, on uvloop (less CPU per call than asyncio's own loop)."""
    uvloop.run(serve(config))
