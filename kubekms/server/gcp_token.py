"""The Cloud KMS API's token endpoint: OAuth's JWT-bearer grant (RFC 7523) on the REST listener, ``POST /token``.

Clients that do not sign their own JWT for the API (Go's REST client, or any key file whose
``token_uri`` is set to this endpoint) post the service account's assertion here, as they would to
Google's token endpoint; :meth:`~kubekms.server.gcp_auth.JwtVerifier.exchange` checks it and the
answer is Google's token response. Refusals are OAuth's error bodies (``invalid_grant``...), never the
assertion, and go to the server's refusal log (rate-limited per client) and refusal metrics.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

from kubekms.errors import Unauthenticated
from kubekms.server.gcp_auth import JwtVerifier
from kubekms.server.logs import RefusalLog

PATH = "/token"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
REQUEST_SECONDS = 30.0
WIRE = "gcp-token"


def _answer(status: int, payload: dict[str, object]) -> web.Response:
    # RFC 6749 5.1: token responses are not to be cached
    return web.Response(status=status, body=json.dumps(payload).encode(), content_type="application/json",
                        headers={"Cache-Control": "no-store", "Pragma": "no-cache"})  # fmt: skip


def token_handler(verifier: JwtVerifier, refusals: RefusalLog) -> Callable[[web.Request], Awaitable[web.Response]]:
    def _refused(request: web.Request, error: str, description: str) -> web.Response:
        # through the refusal log: its lines are rate-limited per client, a flood of bad assertions is only counted
        refusals.refused(client=request.remote or "-", wire=WIRE, reason=error, status=400, operation="Token",
                         request_id=str(uuid.uuid4()))  # fmt: skip
        return _answer(400, {"error": error, "error_description": description})

    async def token(request: web.Request) -> web.Response:
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
        grant_type, assertion = form.get("grant_type"), form.get("assertion")
        if grant_type != JWT_BEARER:
            return _refused(request, "unsupported_grant_type", f"grant_type must be {JWT_BEARER}")
        if not isinstance(assertion, str) or not assertion:
            return _refused(request, "invalid_request", "assertion is required")
        try:
            access_token, expires_in = verifier.exchange(assertion)
        except Unauthenticated as refusal:
            return _refused(request, "invalid_grant", refusal.message)
        return _answer(200, {"access_token": access_token, "token_type": "Bearer", "expires_in": expires_in})

    return token
