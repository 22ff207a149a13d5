"""The Cloud KMS API's token endpoint: OAuth's JWT-bearer grant (RFC 7523) on the REST listener, ``POST /token``.

Clients that do not sign their own JWT for the API (Go's REST client, or any key file whose
``token_uri`` is set to this endpoint) post the service account's assertion here, as they would to
Google's token endpoint; :meth:`~kubekms.server.gcp_auth.JwtVerifier.exchange` checks it and the
answer is Google's token response. Every exchange leaves an audit record (``gcp:Token``: the principal
once the assertion verifies, ``-`` before; never the assertion or the token). Refusals are OAuth's
error bodies (``invalid_grant``...), never the assertion, and go to the server's refusal log (rate-limited
per client) and refusal metrics. A client with too many refused exchanges in the window (the console's
per-client sign-in limit: 20 in 5 minutes) is answered 429 with ``Retry-After`` and its assertions are
not checked until the oldest failure leaves the window; successful exchanges are not limited.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable

from aiohttp import web

from kubekms.errors import Reason, Unauthenticated
from kubekms.server.audit import AuditLog
from kubekms.server.gcp_auth import JwtVerifier
from kubekms.server.logs import RefusalLog
from kubekms.wire.v1 import errors as v1_errors

PATH = "/token"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
REQUEST_SECONDS = 30.0
WIRE = "gcp-token"
OPERATION = "Token"
AUDIT_OPERATION = "gcp:" + OPERATION  # the Cloud KMS wire's audit prefix
FAILURES_PER_CLIENT = 20  # as the console's sign-in (kubekms.server.console.throttle), per client address
WINDOW_SECONDS = 300.0
MAX_CLIENTS = 4096  # clients whose failures are remembered (least recently failed forgotten first), as RefusalLog


class TokenFailures:
    """Refused exchanges per client address in a sliding window; the Cloud KMS listener runs in one process
    (the leader), so this one table is the server's."""

    def __init__(self, *, failures: int = FAILURES_PER_CLIENT, window: float = WINDOW_SECONDS,
                 max_clients: int = MAX_CLIENTS, clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self._failures = failures
        self._window = window
        self._max_clients = max_clients
        self._clock = clock
        self._clients: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, client: str) -> float:
        """Seconds until ``client`` may exchange again; 0 when it may now."""
        times = self._clients.get(client)
        if times is None:
            return 0.0
        now = self._clock()
        while times and times[0] <= now - self._window:
            times.popleft()
        if len(times) < self._failures:
            return 0.0
        return max(times[0] + self._window - now, 0.001)

    def failed(self, client: str) -> None:
        times = self._clients.pop(client, None) or deque(maxlen=self._failures)
        times.append(self._clock())
        self._clients[client] = times
        if len(self._clients) > self._max_clients:
            self._clients.popitem(last=False)


def _answer(status: int, payload: dict[str, object], headers: dict[str, str] | None = None) -> web.Response:
    # RFC 6749 5.1: token responses are not to be cached
    return web.Response(status=status, body=json.dumps(payload).encode(), content_type="application/json",
                        headers={"Cache-Control": "no-store", "Pragma": "no-cache", **(headers or {})})  # fmt: skip


def token_handler(verifier: JwtVerifier, refusals: RefusalLog, audit: AuditLog,
                  failures: TokenFailures) -> Callable[[web.Request], Awaitable[web.Response]]:  # fmt: skip
    def _audit(principal: str, result: str, status: int, request_id: str) -> None:
        audit.record(principal=principal, project_id="-", operation=AUDIT_OPERATION, key_id="", result=result,
                     request_id=request_id, status=status)  # fmt: skip

    def _refused(request: web.Request, error: str, description: str, *, status: int = 400, result: str = "",
                 headers: dict[str, str] | None = None) -> web.Response:  # fmt: skip
        client, request_id = request.remote or "-", str(uuid.uuid4())
        if status != 429:  # a throttled attempt checked nothing: not a failure of its own
            failures.failed(client)
        # through the refusal log: its lines are rate-limited per client, a flood of bad assertions is only counted
        refusals.refused(client=client, wire=WIRE, reason=error, status=status, operation=OPERATION,
                         request_id=request_id)  # fmt: skip
        _audit("-", result or v1_errors.CODE_BY_REASON[Reason.UNAUTHENTICATED], status, request_id)
        return _answer(status, {"error": error, "error_description": description}, headers)

    async def token(request: web.Request) -> web.Response:
        wait = failures.retry_after(request.remote or "-")
        if wait:
            refused = _refused(request, "rate_limit_exceeded", "too many refused token requests from this client; "
                               "retry later", status=429, result=v1_errors.CODE_BY_REASON[Reason.THROTTLED],
                               headers={"Retry-After": str(math.ceil(wait))})  # fmt: skip
            refused.force_close()  # its body is not read
            return refused
        try:
            async with asyncio.timeout(REQUEST_SECONDS):
                form = await request.post()
        except TimeoutError:
            unread = _refused(request, "invalid_request", f"the request did not arrive within {REQUEST_SECONDS:.0f} s")
            unread.force_close()  # the body was not read whole: close rather than drain it
            return unread
        except web.HTTPRequestEntityTooLarge:
            unread = _refused(request, "invalid_request", "the request is too large")
            unread.force_close()
            return unread
        except web.RequestPayloadError:  # a gzip or deflate body that does not decode
            request.content.feed_eof()  # aiohttp would linger reading the rest, which raises again (a traceback)
            unread = _refused(request, "invalid_request", "the request body does not decode as its Content-Encoding")
            unread.force_close()
            return unread
        grant_type, assertion = form.get("grant_type"), form.get("assertion")
        if grant_type != JWT_BEARER:
            return _refused(request, "unsupported_grant_type", f"grant_type must be {JWT_BEARER}")
        if not isinstance(assertion, str) or not assertion:
            return _refused(request, "invalid_request", "assertion is required")
        try:
            grant = verifier.exchange(assertion)
        except Unauthenticated as refusal:
            return _refused(request, "invalid_grant", refusal.message)
        _audit(grant.principal.name, "OK", 200, str(uuid.uuid4()))
        return _answer(200, {"access_token": grant.access_token, "token_type": "Bearer",
                             "expires_in": grant.expires_in})  # fmt: skip

    return token
