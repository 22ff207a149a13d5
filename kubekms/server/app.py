"""The aiohttp application: authenticate, authorize, dispatch, answer, audit, measure.

One keystore (provider ``local``) per project under ``state_dir/<project_id>``: projects
isolate tenants. The request path does no file IO except appending to the in-memory audit
buffer; principals are looked up in precomputed dictionaries.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import time
from pathlib import Path

from aiohttp import web

from kubekms.backend import Backend
from kubekms.errors import InvalidArgument, KMSError
from kubekms.providers import BackendConfig
from kubekms.providers.local import open_backend as open_local_backend
from kubekms.server.audit import AuditLog
from kubekms.server.aws_wire import AwsWire
from kubekms.server.console import Console, ConsoleSettings
from kubekms.server.console.settings import DEFAULTS as CONSOLE_DEFAULTS
from kubekms.server.logs import RefusalLog
from kubekms.server.metrics import ServerMetrics
from kubekms.server.operations import Call, KeyScope, Route, key_ref_of, resolve
from kubekms.server.principals import PrincipalDirectory, PrincipalGrant
from kubekms.wire import codec, inputs
from kubekms.wire.signing import SignatureVerifier

log = logging.getLogger("kubekms.server")

PROJECT_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")  # matched whole: also a directory name (no dots, slashes)
MAX_PATH_CHARS = 1024
JSON_CONTENT_TYPE = "application/json"
UNAUTHENTICATED = "-"


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
    ) -> None:
        self._state_dir = state_dir
        self._principals = principals
        self._verifier = SignatureVerifier(principals.secret_for)
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
                directory = self._state_dir / project_id
                # a new tenant gets a fresh keystore; an existing one must find its root key
                init = self._init or not directory.exists()
                backend = await open_local_backend(
                    BackendConfig(
                        provider="local",
                        project_id=project_id,
                        state_dir=directory,
                        init=init,
                        cmk_limit=self._cmk_limit,
                    )
                )
                self._backends[project_id] = backend
                log.info("opened project keystore", extra={"fields": {"project": project_id, "created": init}})
        return backend

    async def open_existing_projects(self) -> None:
        """Open every keystore already on disk, so a bad root key stops the server at start, not at first call."""
        for directory in sorted(self._state_dir.iterdir()):
            if directory.is_dir() and PROJECT_ID_PATTERN.fullmatch(directory.name):
                await self.backend_for(directory.name)

    async def run_due_work(self) -> None:
        self.metrics.maintenance_passes.inc()
        for project_id, backend in list(self._backends.items()):
            run = getattr(backend, "run_due_work", None)
            if run is None:
                continue
            try:
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

    def build(self) -> web.Application:
        app = web.Application(client_max_size=self._max_body_bytes)
        app.router.add_get("/healthz", self.handle_health)
        app.router.add_get("/metrics", self.handle_metrics)
        app.router.add_route("*", "/v1.0/{project_id}/kms/{tail:[\\s\\S]*}", self.handle_kms)
        if self._console.enabled:  # the web console (issue 17) under /console/, same principals and audit log
            Console(settings=self._console, principals=self._principals, backend_for=self.backend_for,
                    audit=self._audit, projects=lambda: sorted(self._backends), project_id_pattern=PROJECT_ID_PATTERN,
                    max_body_bytes=self._max_body_bytes).mount(app)  # fmt: skip
        # the AWS KMS JSON 1.1 wire (POST / with X-Amz-Target) on the same keystores and principals
        AwsWire(principals=self._principals, backend_for=self.backend_for, audit=self._audit, metrics=self.metrics,
                refusals=self.refusals, max_body_bytes=self._max_body_bytes).register(app)  # fmt: skip
        app.router.add_route("*", "/{tail:[\\s\\S]*}", self.handle_unknown)  # [\s\S]: "." stops at a newline
        return app

    async def handle_health(self, request: web.Request) -> web.Response:
        return web.Response(text="ok", headers={"X-Request-Id": os.urandom(16).hex()})

    async def handle_metrics(self, request: web.Request) -> web.Response:
        return web.Response(
            body=self.metrics.render(),
            headers={"Content-Type": self.metrics.content_type, "X-Request-Id": os.urandom(16).hex()},
        )

    async def handle_unknown(self, request: web.Request) -> web.Response:
        request_id = os.urandom(16).hex()
        error = InvalidArgument("unknown request path", code="KMS.0201")
        response = self._error_response(error, request_id)
        self._refused(request, error, response, "unknown", request_id)
        return response

    async def handle_kms(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        request_id = os.urandom(16).hex()
        project_id = request.match_info["project_id"]
        operation_name, principal_name, key_id = "unknown", UNAUTHENTICATED, ""
        try:
            inputs.request_target(request.raw_path, error=_bad_path)
            project_id = inputs.identifier(project_id, "project id in the request path", PROJECT_ID_PATTERN,
                                           error=_bad_path)  # fmt: skip
            tail = inputs.text(request.match_info["tail"], "request path", max_chars=MAX_PATH_CHARS, error=_bad_path)
            route = resolve(request.method, tail)
            operation_name = route.operation.name
            body = await self._read_body(request)
            principal = self._authenticate(request, body)
            principal_name = principal.name
            fields = codec.RequestFields(codec.parse_json_object(body))
            if route.operation.scope is KeyScope.KEY:
                key_id = key_ref_of(route.path_key_id, request.query, fields)
            principal.check_operation(operation_name, project_id)
            call = Call(
                backend=await self.backend_for(project_id),
                project_id=project_id,
                fields=fields,
                query=request.query,
                path_key_id=route.path_key_id,
                path_tag_key=route.path_tag_key,
            )
            if route.operation.scope is KeyScope.KEY:
                await self._authorize_key(principal, route, call, key_id)
            elif route.operation.scope is KeyScope.ACCOUNT and not principal.all_keys:
                raise principal.deny_account_wide(operation_name)
            answer = await route.operation.handler(call)
            if not key_id and isinstance(answer, dict):
                key_id = str((answer.get("key_info") or {}).get("key_id", ""))
            response = web.Response(
                body=json.dumps(answer, separators=(",", ":")).encode(),
                content_type=JSON_CONTENT_TYPE,
                headers={"X-Request-Id": request_id},
            )
            result = "OK"
        except KMSError as error:
            response, result = self._error_response(error, request_id), error.code
            if not PROJECT_ID_PATTERN.fullmatch(project_id):
                project_id = "-"  # never an unchecked path segment in the audit log
            self._refused(request, error, response, operation_name, request_id)
        except Exception:
            log.exception("unexpected error", extra={"fields": {"operation": operation_name, "request_id": request_id}})
            response, result = self._error_response(KMSError("internal error", code="KMS.0101"), request_id), "KMS.0101"
        self._audit.record(
            principal=principal_name,
            project_id=project_id,
            operation=operation_name,
            key_id=key_id,
            result=result,
            request_id=request_id,
            status=response.status,
        )
        self.metrics.observe(operation_name, result, time.perf_counter() - started)
        return response

    async def _read_body(self, request: web.Request) -> bytes:
        return await inputs.read_body(request, self._max_body_bytes, code="KMS.0203")

    def _authenticate(self, request: web.Request, body: bytes) -> PrincipalGrant:
        access_key = self._verifier.verify(request.method, request.raw_path.split("?", 1)[0], request.query_string,
                                           request.headers, body)  # fmt: skip
        principal = self._principals.get(access_key)
        assert principal is not None, "the verifier only accepts access keys of this (immutable) directory"
        return principal

    async def _authorize_key(self, principal: PrincipalGrant, route: Route, call: Call, key_ref: str) -> None:
        await principal.authorize_key(route.operation.name, call.backend, key_ref)

    def _refused(
        self, request: web.Request, error: KMSError, response: web.Response, operation: str, request_id: str
    ) -> None:
        if response.status < 500:
            self.refusals.refused(client=request.remote or "-", wire="v1", reason=error.code, status=response.status,
                                  operation=operation, request_id=request_id)  # fmt: skip

    @staticmethod
    def _error_response(error: KMSError, request_id: str) -> web.Response:
        response = web.Response(
            status=codec.error_status(error),
            body=json.dumps(codec.error_body(error)).encode(),
            content_type=JSON_CONTENT_TYPE,
            headers={"X-Request-Id": request_id},
        )
        if isinstance(error, inputs.BodyTooLarge):
            response.force_close()  # the rest of the body is not read: close instead of draining it
        return response


def _bad_path(message: str) -> InvalidArgument:
    return InvalidArgument(message, code="KMS.0201")
