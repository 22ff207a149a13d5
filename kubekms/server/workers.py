"""Several server processes on one port (``workers: N`` in the config, issue 15).

A pre-fork model: the supervisor (the ``kubekms server`` process) binds one listening socket per
worker on the same port (SO_REUSEPORT: the kernel spreads new connections over them by address hash)
and starts N fresh interpreters (``python -m kubekms.server.workers``), worker i inheriting socket
i. One socket shared by all was measured first: the worker the kernel woke first took every
connection of a burst (16 of 16 on one of 2 workers, every time, and 15 of 16 even when they came 50
ms apart), so the other workers idled for as long as those keep-alive connections lived. The
supervisor keeps every socket open, so connections that reach the socket of a worker that died wait
for its restart (about a second) instead of being refused. Worker 0, the leader, runs the
maintenance passes and the Cloud KMS listeners; it starts first and alone, so keystores are created
once; the others then start together. Each worker reports when it is set up and accepts connections
only at the supervisor's go, which comes once every worker is set up: the server's first answer (a
readiness probe's ``/healthz``) means every worker serves, not worker 0 alone. A worker that dies is
started again under the same index; SIGTERM/SIGINT to the supervisor is passed on to every worker,
which finishes its requests in flight. Workers die with the supervisor (the kernel's parent-death
signal), so a killed supervisor leaves nothing holding the port.

Shared between workers, in a directory of the supervisor's own per run: Prometheus values
(multiprocess mode, :mod:`kubekms.server.metrics`) and, when the audit log is standard
output, the chain's head (:mod:`kubekms.server.audit`). The keystore is multi-process safe
(SQLite WAL, ``BEGIN IMMEDIATE``, ``data_version`` cache invalidation).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import pickle
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.multiprocess import mark_process_dead

from kubekms.server.config import ServerConfig
from kubekms.server.metrics import MULTIPROCESS_DIR_VARIABLE

log = logging.getLogger("kubekms.server")

WORKER_HEADER = "X-Kubekms-Worker"  # the answering worker's pid: which process served a request
RESTART_PAUSE = 1.0  # seconds before starting again a worker that died (no busy loop when one cannot start)
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class WorkerListener:
    """What a worker receives from the supervisor."""

    sock: socket.socket
    leader: bool  # runs maintenance and the Cloud KMS listeners
    audit_head: Path  # the shared chain head when the audit log is standard output
    ready: Callable[[], Awaitable[None]]  # await once set up: returns at the supervisor's go to accept connections


@dataclass(frozen=True)
class _Start:
    config: ServerConfig
    init: bool
    index: int
    listen_fd: int
    ready_fd: int
    run_dir: str
    supervisor_pid: int


class WorkerStartError(RuntimeError):
    """A worker exited before serving (bad keystore, TLS files...): the server cannot start."""


def listening_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """``count`` sockets listening on one port (the first one's, when ``port`` is 0), one per worker."""
    from kubekms.server.runner import listen_refusal, probe_listen  # runner imports this module

    probe_listen("listen", host, port)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # same user only (the kernel's rule)
            sock.bind((host, port))
            port = sock.getsockname()[1]
            sock.listen(1024)
            sock.set_inheritable(True)
    except OSError as error:
        for sock in sockets:
            sock.close()
        raise listen_refusal("listen", host, port, error) from None
    return sockets


class Supervisor:
    def __init__(self, config: ServerConfig, *, init: bool) -> None:
        self._config = config
        self._init = init
        self._run_dir = Path(tempfile.mkdtemp(prefix="kubekms-server-"))
        (self._run_dir / "metrics").mkdir()
        self._socks = listening_sockets(config.host, config.port, config.workers)
        self._workers: dict[int, asyncio.subprocess.Process] = {}
        self._stopping = False

    async def _start(self, index: int) -> asyncio.subprocess.Process:
        """Start worker ``index`` and wait until it serves (registered at once, so a stop reaches it too)."""
        read_end, write_end = os.pipe()
        listen_fd = self._socks[index].fileno()
        start = _Start(self._config, self._init, index, listen_fd, write_end, str(self._run_dir), os.getpid())
        env = {**os.environ, MULTIPROCESS_DIR_VARIABLE: str(self._run_dir / "metrics")}
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "kubekms.server.workers", stdin=asyncio.subprocess.PIPE,
                pass_fds=(listen_fd, write_end), env=env,
            )  # fmt: skip
        finally:
            os.close(write_end)
        self._workers[index] = process
        assert process.stdin is not None
        process.stdin.write(pickle.dumps(start))  # kept open: the go follows (_go)
        try:
            ready = await asyncio.get_running_loop().run_in_executor(None, os.read, read_end, 1)
        finally:
            os.close(read_end)
        if not ready:  # the pipe closed: the worker exited before serving
            code = await process.wait()
            self._forget(index)
            raise WorkerStartError(f"worker {index} exited with {code} before serving")
        log.info("worker set up", extra={"fields": {"worker": index, "pid": process.pid}})
        return process

    @staticmethod
    def _go(process: asyncio.subprocess.Process) -> None:
        """Let a worker that is set up accept connections."""
        assert process.stdin is not None
        with contextlib.suppress(ConnectionError):  # it died meanwhile: its keeper starts it again
            process.stdin.write(b"g")
            process.stdin.close()

    def _forget(self, index: int) -> None:
        process = self._workers.pop(index)
        # prometheus_client leaves its multiprocess functions unannotated
        mark_process_dead(process.pid, str(self._run_dir / "metrics"))  # type: ignore[no-untyped-call]

    async def _keep(self, index: int) -> None:
        """Keep worker ``index`` running (starting it when absent) until the server stops."""
        while not self._stopping:
            process = self._workers.get(index)
            if process is None:
                try:
                    process = await self._start(index)
                    self._go(process)
                except WorkerStartError as error:
                    if not self._stopping:
                        log.error("worker did not start; trying again", extra={"fields": {"error": str(error)}})
                        await asyncio.sleep(RESTART_PAUSE)
                    continue
            code = await process.wait()
            self._forget(index)
            if not self._stopping:
                log.error("worker died; starting it again", extra={"fields": {"worker": index, "exit": code}})
                await asyncio.sleep(RESTART_PAUSE)

    async def _start_all(self) -> None:
        """Every worker set up, then all let serve at once."""
        # the leader first and alone: it creates keystores; its failure stops the start
        started = [await self._start(0)]
        others = range(1, self._config.workers)
        for result in await asyncio.gather(*(self._start(index) for index in others), return_exceptions=True):
            if isinstance(result, WorkerStartError):  # its keeper tries again
                log.error("worker did not start; trying again", extra={"fields": {"error": str(result)}})
            elif isinstance(result, BaseException):
                raise result
            else:
                started.append(result)
        for process in started:
            self._go(process)

    async def run(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        try:
            await self._start_all()
            keepers = [asyncio.create_task(self._keep(index)) for index in range(self._config.workers)]
            log.info("kubekms server workers starting", extra={"fields": {"workers": self._config.workers}})
            await stop.wait()
            self._stopping = True
            log.info("stopping: every worker finishes its requests in flight")
            for process in list(self._workers.values()):
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
            await asyncio.gather(*keepers)
        finally:
            self._stopping = True
            for process in list(self._workers.values()):  # left by a failed start
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
            for sock in self._socks:
                sock.close()
            shutil.rmtree(self._run_dir, ignore_errors=True)


async def supervise(config: ServerConfig, *, init: bool) -> None:
    from kubekms.server.runner import ServerSetupError  # runner imports this module

    try:
        await Supervisor(config, init=init).run()
    except WorkerStartError as error:
        raise ServerSetupError(f"{error} (its log lines above say why)") from None


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def worker_main() -> None:
    """Entry of a worker process: its start settings arrive pickled on stdin from the supervisor."""
    import uvloop

    from kubekms.keystore import KeystoreSetupError
    from kubekms.logs import configure_json_logging
    from kubekms.server.principals import PrincipalsFileError
    from kubekms.server.runner import ServerSetupError, serve

    _die_with_parent()
    start: _Start = pickle.load(sys.stdin.buffer)  # noqa: S301 - from our own supervisor over a pipe; the go follows
    if os.getppid() != start.supervisor_pid:  # it died before the parent-death signal was set (in a
        raise SystemExit(1)  # container the supervisor is pid 1 itself: compare with its pid, not with 1)
    configure_json_logging()
    sock = socket.socket(fileno=start.listen_fd)

    async def ready() -> None:
        os.write(start.ready_fd, b"r")
        os.close(start.ready_fd)
        go = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.buffer.read, 1)
        if not go:  # the supervisor closed the pipe without a go: it is stopping
            raise SystemExit(0)

    listener = WorkerListener(sock, start.index == 0, Path(start.run_dir) / "audit-head", ready)
    try:
        uvloop.run(serve(start.config, init=start.init, worker=listener))
    except (PrincipalsFileError, ServerSetupError, KeystoreSetupError, OSError) as error:
        log.error("worker cannot start", extra={"fields": {"error": str(error)}})
        raise SystemExit(2) from None


if __name__ == "__main__":
    worker_main()
