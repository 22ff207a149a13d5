"""The server application: the project keystores, the routes of both wires, health and metrics, the console.

Each wire (:mod:`~kubekms.server.v1_wire`, :mod:`~kubekms.server.aws_wire`) runs in one
:class:`~kubekms.server.pipeline.Pipeline` that authorises, audits and measures its requests.

One keystore (provider ``local``) per project under ``state_dir/<project_id>``: projects
isolate tenants. The request path does no file IO except appending to the in-memory audit
buffer; principals are looked up in precomputed dictionaries.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import re
from collections.abc import Awaitable, Iterator
from pathlib import Path

from aiohttp import web

from kubekms.backend import Backend
from kubekms.errors import InvalidArgument, KMSError
from kubekms.keystore import Keystore
from kubekms.private_files import open_private
from kubekms.providers.local import LocalBackend
from kubekms.server.audit import AuditLog
from kubekms.server.aws_wire import AwsWire
from kubekms.server.console import Console, ConsoleSettings
from kubekms.server.console.settings import DEFAULTS as CONSOLE_DEFAULTS
from kubekms.server.http_front import Handler
from kubekms.server.http_messages import HttpRequest, HttpResponse, from_aiohttp, to_aiohttp
from kubekms.server.logs import RefusalLog
from kubekms.server.metrics import ServerMetrics
from kubekms.server.pipeline import REQUEST_IDS, Pipeline
from kubekms.server.principals import PrincipalDirectory
from kubekms.server.shared_database import SharedDatabase
from kubekms.server.v1_not_offered import refusal_for_path
from kubekms.server.v1_versions import version_answer, versions_answer
from kubekms.server.v1_wire import BAD_PATH_CODE, JSON_CONTENT_TYPE, PROJECT_ID_PATTERN, V1Wire, error_response, v1_path

log = logging.getLogger("kubekms.server")

__all__ = ["PROJECT_ID_PATTERN", "KMSApplication"]


PROJECT_SETUP_LOCK_FILE = ".project-setup.lock"

# GET / and GET /{version_id} (v1.0, or another id to refuse): Huawei's version discovery
VERSION_PATH = re.compile(r"/(?:v[0-9]{1,3}(?:\.[0-9]{1,3})?/?)?")


@contextlib.contextmanager
def _project_setup_lock(state_dir: Path) -> Iterator[None]:
    """Held across worker processes while one decides whether a project is new and opens its keystore.

    Without it a worker could find the directory another worker had just made, still without its root key, and
    open it as an existing project: "root key does not exist", a 500 for that request.
    """
    descriptor = open_private(state_dir / PROJECT_SETUP_LOCK_FILE, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # drops the flock


class KMSApplication:
    def __init__(
        self,
        *,
        state_dir: Path,
        principals: PrincipalDirectory,
        audit: AuditLog,
        init: bool = False,
        cmk_limit: int = 1000,
        max_body_bytes: int = 64 * 1024,
        console: ConsoleSettings = CONSOLE_DEFAULTS,
        database_url: str | None = None,
        shared_database: SharedDatabase | None = None,
    ) -> None:
        self._state_dir = state_dir
        self._database_url = database_url  # PostgreSQL for every project's rows; None: SQLite in state_dir
        self._shared_database = shared_database  # readiness round trips and the replicas' maintenance lock
        self._principals = principals
        self._audit = audit
        self._init = init
        self._cmk_limit = cmk_limit
        self._max_body_bytes = max_body_bytes
        self._console = console
        self.metrics = ServerMetrics()
        self.refusals = RefusalLog(self.metrics)
        self._backends: dict[str, Backend] = {}
        self._opening: dict[str, asyncio.Lock] = {}

    # ------------------------------------------------------------------ backends

    async def backend_for(self, project_id: str) -> Backend:
        backend = self._backends.get(project_id)
        if backend is not None:
            return backend
        lock = self._opening.setdefault(project_id, asyncio.Lock())
        async with lock:
            backend = self._backends.get(project_id)
            if backend is None:
                keystore, created = await asyncio.to_thread(self._open_keystore, self._state_dir / project_id)
                backend = LocalBackend(keystore)
                self._backends[project_id] = backend
                log.info("opened project keystore", extra={"fields": {"project": project_id, "created": created}})
        return backend

    def _open_keystore(self, directory: Path) -> tuple[Keystore, bool]:
        """The project's keystore (rows in SQLite beside its root key, or in the database), and whether it is new.

        Runs in a thread: the cross-process lock is taken and dropped there, even if the request is cancelled.
        """
        with _project_setup_lock(self._state_dir):
            # a new tenant gets a fresh keystore; an existing one must find its root key
            init = self._init or not directory.exists()
            keystore = Keystore(directory, init=init, cmk_limit=self._cmk_limit, database_url=self._database_url)
        return keystore, init

    def project_ids(self) -> list[str]:
        """Projects with a keystore directory (opened by whichever worker process) and those open here."""
        on_disk = {d.name for d in self._state_dir.iterdir() if d.is_dir() and PROJECT_ID_PATTERN.fullmatch(d.name)}
        return sorted(on_disk | set(self._backends))

    async def open_existing_projects(self) -> None:
        """Open every keystore already on disk, so a bad root key stops the server at start, not at first call."""
        for directory in sorted(self._state_dir.iterdir()):
            if directory.is_dir() and PROJECT_ID_PATTERN.fullmatch(directory.name):
                await self.backend_for(directory.name)

    async def run_due_work(self) -> None:
        if self._shared_database is not None and not await self._shared_database.holds_maintenance_lock():
            return  # another replica runs maintenance on the shared database
        self.metrics.maintenance_passes.inc()
        # every project on disk, not only those open here: with several workers another one may have opened
        # (or created) a project whose first request never reached this one (S9-H4-1)
        for project_id in self.project_ids():
            try:
                backend = await self.backend_for(project_id)
                run = getattr(backend, "run_due_work", None)
                if run is None:
                    continue
                done = await run()
            except Exception:
                log.exception("maintenance pass failed", extra={"fields": {"project": project_id}})
                continue
            self.metrics.keys_rotated.inc(len(done.rotated))
            self.metrics.keys_destroyed.inc(len(done.destroyed))
            if done.rotated or done.destroyed:
                log.info(
                    "maintenance pass",
                    extra={"fields": {"project": project_id, "rotated": done.rotated, "destroyed": done.destroyed}},
                )

    async def close(self) -> None:
        for backend in self._backends.values():
            await backend.close()
        self._backends.clear()
        self._audit.close()

    def flush_audit(self) -> None:
        self._audit.flush()

    # ------------------------------------------------------------------ HTTP

    def handler(self) -> Handler:
        """The server's requests, routed: health, readiness, metrics, the v1.0 wire, the AWS wire, else 404."""
        v1 = self._pipeline(V1Wire(self._principals, max_body_bytes=self._max_body_bytes))
        aws = self._pipeline(AwsWire(self._principals, max_body_bytes=self._max_body_bytes))
        fixed: dict[tuple[str, str], Handler] = {
            ("GET", "/healthz"): self.handle_health,
            ("GET", "/readyz"): self.handle_ready,
            ("GET", "/metrics"): self.handle_metrics,
        }
        fixed.update({("HEAD", path): answer for (_, path), answer in fixed.items()})

        def route(request: HttpRequest) -> Awaitable[HttpResponse]:  # the handler's own coroutine: no frame between
            if request.method == "POST" and (request.raw_path == "/" or (request.raw_path.startswith("/")
                                                                         and request.path == "/")):  # fmt: skip
                return aws.handle(request)
            answer = fixed.get((request.method, request.raw_path))
            if answer is not None:
                return answer(request)
            if v1_path(request) is not None:
                return v1.handle(request)
            if request.method == "GET" and VERSION_PATH.fullmatch(request.raw_path):
                return self.handle_versions(request)
            return self.handle_unknown(request)

        return route

    def console_app(self, handler: Handler) -> web.Application | None:
        """The web console's aiohttp application (issue 17), or None when disabled.

        The front gives aiohttp the connections that ask for ``/console``; whatever else such a
        connection asks later is passed back to ``handler`` (the same routes as the front's).
        """
        if not self._console.enabled:
            return None
        app = web.Application(client_max_size=self._max_body_bytes)
        Console(settings=self._console, principals=self._principals, backend_for=self.backend_for, audit=self._audit,
                projects=self.project_ids, project_id_pattern=PROJECT_ID_PATTERN, max_body_bytes=self._max_body_bytes,
                database_url=self._database_url).mount(app)  # fmt: skip
        max_body_bytes = self._max_body_bytes

        async def elsewhere(request: web.Request) -> web.Response:
            return to_aiohttp(await handler(await from_aiohttp(request, max_body_bytes)))

        app.router.add_route("*", "/{tail:[\\s\\S]*}", elsewhere)  # [\s\S]: "." stops at a newline
        return app

    async def handle_health(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse.text(200, "ok", {"X-Request-Id": REQUEST_IDS.hex()})

    async def handle_ready(self, request: HttpRequest) -> HttpResponse:
        """Ready when the last audit write succeeded and the shared database answers a round trip (liveness,
        /healthz, never asks either): a server that cannot write its audit log (a full disk) leaves the rotation."""
        headers = {"X-Request-Id": REQUEST_IDS.hex()}
        if (audit_error := self._audit.write_error) is not None:  # the reason's class and text, never the path
            return HttpResponse.text(503, f"audit log cannot be written ({audit_error})", headers)
        if self._shared_database is not None:
            try:  # in a task of its own: asyncio.timeout needs one, and the front starts handlers without
                await asyncio.create_task(self._shared_database.ping())  # (kubekms.server.http_front)
            except Exception as error:  # psycopg.Error, OSError, TimeoutError: the reason's class, never the URL
                return HttpResponse.text(503, f"database unreachable ({type(error).__name__})", headers)
        return HttpResponse.text(200, "ok", headers)

    async def handle_metrics(self, request: HttpRequest) -> HttpResponse:
        headers = {"Content-Type": self.metrics.content_type, "X-Request-Id": REQUEST_IDS.hex()}
        return HttpResponse(200, self.metrics.render(), headers)

    async def handle_versions(self, request: HttpRequest) -> HttpResponse:
        """Huawei's version discovery, unsigned as Huawei's: ``GET /`` lists v1.0, ``GET /{version_id}`` describes
        it (another id: NotFound). Links are relative: the Host a client sent is not echoed into an answer."""
        request_id = REQUEST_IDS.hex()
        version_id = request.raw_path.strip("/")
        try:
            answer = version_answer(version_id, "") if version_id else versions_answer("")
        except KMSError as error:
            return error_response(error, request_id)
        return HttpResponse(200, json.dumps(answer).encode(), {"Content-Type": JSON_CONTENT_TYPE,
                                                               "X-Request-Id": request_id})  # fmt: skip

    async def handle_unknown(self, request: HttpRequest) -> HttpResponse:
        request_id = REQUEST_IDS.hex()
        # a Huawei path outside this wire (key stores, the v2 region calls): refused by name, not as a typo
        error = refusal_for_path(request.path) or InvalidArgument("unknown request path", code=BAD_PATH_CODE)
        response = error_response(error, request_id)
        self.refusals.refused(client=request.remote or "-", wire="v1", reason=BAD_PATH_CODE, status=response.status,
                              operation="unknown", request_id=request_id)  # fmt: skip
        return response

    def _pipeline(self, wire: V1Wire | AwsWire) -> Pipeline[HttpRequest, HttpResponse]:
        return Pipeline(wire=wire, principals=self._principals, backend_for=self.backend_for, audit=self._audit,
                        metrics=self.metrics, refusals=self.refusals, open_backends=self._backends)  # fmt: skip
