"""Who is signed in, and every backend call a console page makes: authorised as on the wire, audited.

A page handler asks :meth:`Gate.visitor` for the signed-in principal (no session: a redirect
to the sign-in page), reads a POST through :meth:`Gate.form` (CSRF checked against the
session) and reaches keys only through :meth:`Gate.call`, which authorises with
:class:`~kubekms.server.console.access.Access`, writes one audit line per call with the
principal, project, v1.0 operation name, key and result, and lets a KMSError through for
the page to show.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from kubekms.backend import Backend, KeyMetadata
from kubekms.errors import KMSError, NotFound, Reason
from kubekms.server.audit import AuditLog
from kubekms.server.console import render
from kubekms.server.console.access import Access
from kubekms.server.console.forms import Form, read_form
from kubekms.server.console.sessions import Session, SessionStore
from kubekms.server.principals import PrincipalDirectory, PrincipalGrant
from kubekms.wire.v1 import errors as v1_errors

PREFIX = "/console/"
SIGN_IN_PATH = PREFIX + "sign-in"
SECURE_COOKIE = "__Host-kubekms-console"  # __Host-: Secure, Path=/, no Domain, enforced by browsers
PLAIN_COOKIE = "kubekms-console"
INTERNAL_ERROR = v1_errors.CODE_BY_REASON[Reason.INTERNAL]

T = TypeVar("T")
BackendFor = Callable[[str], Awaitable[Backend]]


@dataclass(frozen=True)
class Visitor:
    principal: PrincipalGrant
    session: Session
    token: str

    @property
    def notices(self) -> tuple[str, ...]:
        return self.session.notices


class Gate:
    def __init__(
        self,
        *,
        principals: PrincipalDirectory,
        sessions: SessionStore,
        backend_for: BackendFor,
        audit: AuditLog,
        project_id_pattern: re.Pattern[str],
        max_body_bytes: int,
    ) -> None:
        self.principals = principals
        self.sessions = sessions
        self._backend_for = backend_for
        self._audit = audit
        self._project_id_pattern = project_id_pattern
        self._max_body_bytes = max_body_bytes

    @property
    def audit_path(self) -> Path | None:
        return self._audit.path

    # ------------------------------------------------------------------ sessions and cookies

    @staticmethod
    def session_cookie(request: web.Request) -> str:
        return SECURE_COOKIE if request.secure else PLAIN_COOKIE

    def set_session_cookie(
        self, response: web.StreamResponse, request: web.Request, token: str, principal: PrincipalGrant
    ) -> None:
        response.set_cookie(
            self.session_cookie(request),
            f"{token}.{_secret_binding(token, principal)}",
            max_age=int(self.sessions.lifetime_seconds),
            path="/" if request.secure else PREFIX,
            secure=request.secure,
            httponly=True,
            samesite="Strict",
        )

    def clear_session_cookie(self, response: web.StreamResponse, request: web.Request) -> None:
        response.del_cookie(
            self.session_cookie(request),
            path="/" if request.secure else PREFIX,
            secure=request.secure,
            httponly=True,
            samesite="Strict",
        )

    async def visitor(self, request: web.Request) -> Visitor:
        """The signed-in principal; otherwise a redirect to the sign-in page (saying so when a session ended).

        A GET takes the notices waiting for the session's next page.
        """
        cookie = request.cookies.get(self.session_cookie(request))
        token, _, binding = (cookie or "").partition(".")
        session = await asyncio.to_thread(self.sessions.get, token or None, take_notices=request.method == "GET")
        principal = None if session is None else self.principals.get(session.access_key)
        # A session ends with the secret it was opened with: rotating a leaked secret (same access key,
        # new secret, restart) must not leave the leaker signed in until the session's end. Compared as
        # bytes: compare_digest raises on a str holding a non-ASCII character, which any client can send.
        if (
            session is None
            or principal is None
            or not hmac.compare_digest(
                binding.encode(errors="surrogateescape"), _secret_binding(token, principal).encode()
            )
        ):
            raise web.HTTPSeeOther(SIGN_IN_PATH + ("?ended=1" if cookie else ""))
        return Visitor(principal, session, token)

    async def notify(self, visitor: Visitor, notice: str) -> None:
        """Show ``notice`` on the visitor's next page (served by whichever worker)."""
        await asyncio.to_thread(self.sessions.add_notice, visitor.session, notice)

    async def form(self, request: web.Request, visitor: Visitor) -> Form:
        form = await read_form(request, self._max_body_bytes)
        form.check_csrf(visitor.session.csrf_token)
        return form

    # ------------------------------------------------------------------ pages

    def page(self, visitor: Visitor | None, template: str, *, status: int = 200, **context: Any) -> web.Response:
        if visitor is not None:
            context.setdefault("notices", list(visitor.notices))
            context.setdefault("principal", visitor.principal.name)
            context.setdefault("csrf", visitor.session.csrf_token)
            if context.get("project"):
                access = self.access(visitor, context["project"])
                context.setdefault("may_account", access.may("user-quotas") or access.may("user-instances"))
                context.setdefault("may_audit", access.may_read_audit())
        context.setdefault("may_account", False)
        context.setdefault("may_audit", False)
        context.setdefault("notices", [])
        context.setdefault("principal", None)
        context.setdefault("project", None)
        return render.page(template, context, status=status)

    def error_page(
        self, visitor: Visitor | None, error: KMSError, *, back: str = PREFIX, **context: Any
    ) -> web.Response:
        """The backend's refusal as the wire gives it: same HTTP status, code and text."""
        return self.page(visitor, "error.html", status=v1_errors.error_status(error), error=error, back=back, **context)

    # ------------------------------------------------------------------ backend calls

    def project_id(self, request: web.Request) -> str:
        return self.valid_project_id(request.match_info["project"])

    def valid_project_id(self, project_id: str) -> str:
        if not self._project_id_pattern.fullmatch(project_id):
            raise NotFound("no such project", reason=Reason.UNKNOWN_PATH)
        return project_id

    def access(self, visitor: Visitor, project_id: str) -> Access:
        return Access(visitor.principal, project_id)

    async def call(
        self,
        visitor: Visitor,
        project_id: str,
        operation: str,
        run: Callable[[Backend], Awaitable[T]],
        *,
        key_ref: str = "",
    ) -> T:
        """``run`` on the project's backend if the wire would allow ``operation`` on ``key_ref``; audited."""
        request_id = os.urandom(16).hex()
        result, status, key_id = INTERNAL_ERROR, 500, key_ref
        try:
            self._audit.check_writable()
            access = self.access(visitor, project_id)
            access.check(operation)  # before the backend: opening a project's keystore creates one that is new
            backend = await self._backend_for(project_id)
            await access.authorize(operation, backend, key_ref)
            answer = await run(backend)
            result, status = "OK", 200
            if not key_id and isinstance(answer, KeyMetadata):
                key_id = answer.key_id
            return answer
        except KMSError as error:
            result, status = v1_errors.error_code(error), v1_errors.error_status(error)
            raise
        finally:
            self.record(visitor.principal.name, project_id, operation, key_id, result, status, request_id)

    def record(
        self,
        principal: str,
        project_id: str,
        operation: str,
        key_id: str,
        result: str,
        status: int,
        request_id: str = "",
    ) -> None:
        self._audit.record(
            principal=principal,
            project_id=project_id,
            operation=operation,
            key_id=key_id,
            result=result,
            request_id=request_id or os.urandom(16).hex(),
            status=status,
        )


def _secret_binding(token: str, principal: PrincipalGrant) -> str:
    """What ties a session cookie to the secret its principal signed in with (and has now)."""
    digest = hmac.new(principal.secret_key.encode(), b"kubekms console session:" + token.encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()).decode().rstrip("=")
