"""The web console: keys managed in a browser, under ``/console/`` on the server's own listener.

Server-rendered pages (Jinja2, autoescaped), no script at all, one stylesheet served here.
A principal signs in with its access key and secret and may then do exactly what the wires
allow it (:mod:`.access`); every backend call is audited like a wire call (:mod:`.gate`).
The console manages keys and never uses them: no encrypt, decrypt or data key, and no key
material on any page.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web

from kubekms.errors import KMSError, NotFound, Reason
from kubekms.server.audit import AuditLog
from kubekms.server.console import render
from kubekms.server.console.audit_page import AuditPage
from kubekms.server.console.database import open_console_database
from kubekms.server.console.gate import PREFIX, BackendFor, Gate
from kubekms.server.console.keys import KeyPages
from kubekms.server.console.sessions import SessionStore
from kubekms.server.console.settings import ConsoleSettings
from kubekms.server.console.signin import SignIn
from kubekms.server.console.throttle import SignInThrottle
from kubekms.server.principals import PrincipalDirectory

__all__ = ["PREFIX", "Console", "ConsoleSettings"]

log = logging.getLogger("kubekms.server.console")

STYLESHEET_CACHE = "private, max-age=300"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Console:
    def __init__(
        self,
        *,
        settings: ConsoleSettings,
        principals: PrincipalDirectory,
        backend_for: BackendFor,
        audit: AuditLog,
        projects: Callable[[], Iterable[str]],
        project_id_pattern: re.Pattern[str],
        max_body_bytes: int,
        clock: Callable[[], float] = time.time,
        database_url: str | None = None,
    ) -> None:
        """``database_url``: the server's shared PostgreSQL database (sessions shared by its replicas)."""
        database = open_console_database(settings.sessions_file, database_url)
        self.sessions = SessionStore(database, settings.session_seconds, clock=clock)
        self.throttle = SignInThrottle(database, clock=clock)
        self._gate = Gate(
            principals=principals,
            sessions=self.sessions,
            backend_for=backend_for,
            audit=audit,
            project_id_pattern=project_id_pattern,
            max_body_bytes=max_body_bytes,
        )
        self._projects = projects
        self._stylesheet = render.stylesheet()

    def mount(self, app: web.Application) -> None:
        """Serve the console under ``/console/`` of ``app`` (register before any catch-all route)."""
        console = web.Application(middlewares=[self._guard])
        SignIn(self._gate, self.throttle).register(console.router)
        KeyPages(self._gate, self._projects).register(console.router)
        AuditPage(self._gate).register(console.router)
        console.router.add_get("/static/console.css", self._stylesheet_response)
        console.router.add_route("*", "/{tail:[\\s\\S]*}", self._unknown)
        app.router.add_get(PREFIX.rstrip("/"), self._to_prefix)
        app.add_subapp(PREFIX.rstrip("/"), console)

    async def _to_prefix(self, request: web.Request) -> web.Response:
        response = web.HTTPPermanentRedirect(PREFIX)
        render.secure(response, tls=request.secure)
        return response

    async def _stylesheet_response(self, request: web.Request) -> web.Response:
        return web.Response(
            body=self._stylesheet, content_type="text/css", charset="utf-8", headers={"Cache-Control": STYLESHEET_CACHE}
        )

    async def _unknown(self, request: web.Request) -> web.Response:
        raise NotFound("no such console page", reason=Reason.UNKNOWN_PATH)

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Security headers on every answer; a refusal as a page with code and text; never a stack trace."""
        try:
            response = await handler(request)
        except web.HTTPException as exception:
            if exception.status >= 400:
                response = self._gate.error_page(None, KMSError(exception.reason, code=f"HTTP.{exception.status}"))
                response.set_status(exception.status)
            else:
                response = exception
        except KMSError as error:
            response = self._gate.error_page(None, error)
        except Exception:
            request_id = os.urandom(16).hex()
            log.exception("console page failed", extra={"fields": {"path": request.path, "request_id": request_id}})
            internal = KMSError(f"internal error (request {request_id})", reason=Reason.INTERNAL)
            response = self._gate.error_page(None, internal)
        render.secure(response, tls=request.secure)
        return response
