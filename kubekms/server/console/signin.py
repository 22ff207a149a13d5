"""Sign-in with a principal's access key and secret, and sign-out.

The secret crosses the network once, in the sign-in form: over plain HTTP the form is
refused unless the server's own address is loopback. Failed sign-ins are rate limited per
client address and per access key (:mod:`throttle`); a refused attempt never checks the
secret. The sign-in form carries its own CSRF token, bound to a short-lived cookie, so a
foreign page cannot sign a browser into someone else's session. Over TLS that cookie is a
``__Host-`` one, as the session's: another host of the same site (``Domain=``) or a plain-HTTP
answer cannot plant a value it knows.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import math
import secrets

from aiohttp import web

from kubekms.errors import AccessDenied, KMSError, Reason, Throttled, Unauthenticated
from kubekms.server.console.forms import read_form
from kubekms.server.console.gate import PREFIX, SIGN_IN_PATH, Gate
from kubekms.server.console.throttle import SignInThrottle
from kubekms.wire.v1 import errors as v1_errors

SIGN_IN_COOKIE = "kubekms-console-sign-in"
SECURE_SIGN_IN_COOKIE = "__Host-kubekms-console-sign-in"  # over TLS: Secure, Path=/, no Domain
SIGN_IN_COOKIE_SECONDS = 3600
SIGN_IN_OPERATION = "console-sign-in"
SIGN_OUT_OPERATION = "console-sign-out"
MAX_ACCESS_KEY_CHARS = 256
MAX_SECRET_CHARS = 1024
_UNUSED_SECRET = secrets.token_bytes(32)  # compared against when the access key is unknown: same work either way


def on_loopback(request: web.Request) -> bool:
    """True when the connection reached the server on a loopback address."""
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    try:
        return ipaddress.ip_address(sockname[0]).is_loopback if sockname else False
    except ValueError:
        return False


def _sign_in_cookie(request: web.Request) -> tuple[str, str]:
    """The sign-in cookie's name and path for this connection."""
    return (SECURE_SIGN_IN_COOKIE, "/") if request.secure else (SIGN_IN_COOKIE, PREFIX)


class TooManyFailures(Throttled):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed sign-ins: try again in {retry_after} s", reason=Reason.THROTTLED)
        self.retry_after = retry_after


class SignIn:
    def __init__(self, gate: Gate, throttle: SignInThrottle) -> None:
        self._gate = gate
        self._throttle = throttle

    def register(self, router: web.UrlDispatcher) -> None:
        router.add_get("/sign-in", self.show)
        router.add_post("/sign-in", self.submit)
        router.add_post("/sign-out", self.sign_out)

    def _form_page(
        self, request: web.Request, *, status: int = 200, error: KMSError | None = None, notice: str = ""
    ) -> web.Response:
        name, path = _sign_in_cookie(request)
        token = request.cookies.get(name) or secrets.token_urlsafe(32)
        blocked = not request.secure and not on_loopback(request)
        notices = [notice] if notice else []
        response = self._gate.page(
            None, "sign_in.html", status=status, csrf=token, error=error, blocked=blocked, notices=notices
        )
        response.set_cookie(
            name,
            token,
            max_age=SIGN_IN_COOKIE_SECONDS,
            path=path,
            secure=request.secure,
            httponly=True,
            samesite="Strict",
        )
        return response

    async def show(self, request: web.Request) -> web.Response:
        notice = ""
        if request.query.get("ended") == "1":
            notice = "Your session has ended. Sign in again."
        elif request.query.get("signed-out") == "1":
            notice = "You are signed out."
        return self._form_page(request, notice=notice)

    async def submit(self, request: web.Request) -> web.Response:
        try:
            return await self._submit(request)
        except KMSError as error:
            response = self._form_page(request, status=v1_errors.error_status(error), error=error)
            if isinstance(error, TooManyFailures):
                response.headers["Retry-After"] = str(error.retry_after)
            return response

    async def _submit(self, request: web.Request) -> web.Response:
        if not request.secure and not on_loopback(request):
            raise AccessDenied("sign-in needs TLS beyond loopback: configure tls_cert and tls_key", code="CONSOLE.TLS")
        form = await read_form(request, MAX_SECRET_CHARS * 4)
        cookie_name, cookie_path = _sign_in_cookie(request)
        form.check_csrf(request.cookies.get(cookie_name, ""))
        access_key = form.text("access_key", max_chars=MAX_ACCESS_KEY_CHARS, required=True)
        secret = form.text("secret_key", max_chars=MAX_SECRET_CHARS, required=True)
        client = request.remote or "-"
        wait = await asyncio.to_thread(self._throttle.attempt, client, access_key)  # counted as failed until it is not
        if wait:
            self._gate.record("-", "-", SIGN_IN_OPERATION, "", v1_errors.CODE_BY_REASON[Reason.THROTTLED], 429)
            raise TooManyFailures(math.ceil(wait))
        principal = self._gate.principals.get(access_key)
        expected = principal.secret_key.encode() if principal is not None else _UNUSED_SECRET
        if not hmac.compare_digest(secret.encode("utf-8", "surrogatepass"), expected) or principal is None:
            self._gate.record("-", "-", SIGN_IN_OPERATION, "", v1_errors.CODE_BY_REASON[Reason.UNAUTHENTICATED], 401)
            raise Unauthenticated("the access key or the secret is wrong", reason=Reason.UNAUTHENTICATED)
        await asyncio.to_thread(self._throttle.succeeded, client, access_key)
        token, _session = await asyncio.to_thread(self._gate.sessions.open, access_key)
        self._gate.record(principal.name, "-", SIGN_IN_OPERATION, "", "OK", 200)
        response = web.HTTPSeeOther(PREFIX)
        self._gate.set_session_cookie(response, request, token, principal)
        response.del_cookie(cookie_name, path=cookie_path, secure=request.secure)
        return response

    async def sign_out(self, request: web.Request) -> web.Response:
        visitor = await self._gate.visitor(request)
        await self._gate.form(request, visitor)
        await asyncio.to_thread(self._gate.sessions.close, visitor.token)
        self._gate.record(visitor.principal.name, "-", SIGN_OUT_OPERATION, "", "OK", 200)
        response = web.HTTPSeeOther(SIGN_IN_PATH + "?signed-out=1")
        self._gate.clear_session_cookie(response, request)
        return response
