"""The signed, retrying HTTP transport of the KMS v1.0 wire (one pooled aiohttp session).

:class:`WireTransport` signs every request SDK-HMAC-SHA256 (:mod:`kubekms.wire.signing`),
turns error answers into :mod:`kubekms.errors` through :mod:`kubekms.wire.v1.errors` and repeats
a call only as :class:`~kubekms.providers.retry.RetryPolicy` allows. It knows nothing of the
backend protocol; :mod:`kubekms.providers.rest` maps the protocol onto wire calls.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
from yarl import URL

from kubekms.credentials import Credentials
from kubekms.errors import KMSError, Unavailable
from kubekms.providers.backend_text import MAX_CODE, backend_text
from kubekms.providers.credential_headers import header_problem, unusable_credential
from kubekms.providers.retry import Failure, RecentKeys, Repeat, RetryPolicy
from kubekms.wire.signing import sign_headers
from kubekms.wire.v1 import errors as v1_errors

log = logging.getLogger("kubekms.providers.rest")

CONNECTION_POOL = 100
JSON_CONTENT_TYPE = "application/json;charset=UTF-8"
MAX_ANSWER_BYTES = 16 * 1024 * 1024  # far above any answer (list-keys of 1,000 keys is under 1 MiB)


@dataclass(frozen=True)
class WireCall:
    """One operation of the wire: its path after ``/kms/``, method and whether repeating it is harmless."""

    path: str
    method: str = "POST"
    repeat: Repeat = Repeat.SAFE
    array: bool = False
    """The answer may be a JSON array (list-aliases' pages); every other answer is a JSON object."""


class WireTransport:
    """Requests to ``{endpoint}/v1.0/{project_id}/kms/...`` for one project and credential."""

    def __init__(
        self,
        endpoint: str,
        project_id: str,
        credentials: Credentials,
        *,
        ssl_context: ssl.SSLContext | None = None,
        retry: RetryPolicy | None = None,
        request_timeout: float = 30.0,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.project_id = project_id
        self._credentials = credentials
        self._credential_problem = header_problem(credentials)
        self._retry = retry or RetryPolicy()
        self._recent = RecentKeys(self._retry.consistency_window)
        self._request_timeout = request_timeout
        self._base = f"{self.endpoint}/v1.0/{project_id}/kms/"
        connector = aiohttp.TCPConnector(limit=CONNECTION_POOL, ssl=ssl_context if ssl_context is not None else True)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=request_timeout, connect=min(5.0, request_timeout)),
            raise_for_status=False,
            skip_auto_headers=("User-Agent",),
        )

    def created(self, *names: str) -> None:
        """This client just created a key with these names (id, alias): lag about it is retried briefly."""
        self._recent.add(*names)

    async def request(
        self,
        call: WireCall,
        body: Mapping[str, Any] | None = None,
        *,
        query: Mapping[str, str] | None = None,
        key_ref: str | None = None,
    ) -> Any:
        """Send one wire operation with retries; return the decoded JSON answer or raise a KMSError.

        ``key_ref`` names the key the call is about (for the eventual-consistency window).
        """
        if self._credential_problem is not None:
            raise unusable_credential(self._credential_problem)
        raw_body = b"" if body is None else _json_body(body)
        url = self._base + call.path
        if query:
            url += "?" + urlencode(query)
        policy = self._retry
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            # an attempt ends by the call's deadline too: a KMS that takes the request and never
            # answers must not hold the call for the whole request_timeout past it
            remaining = max(policy.deadline - (time.monotonic() - started), 0.001)
            total = min(self._request_timeout, remaining)
            limits = aiohttp.ClientTimeout(total=total, connect=min(5.0, total))
            try:
                answer = await self._send_once(call, url, raw_body, limits)
            except _AttemptFailed as failed:
                error, failure = failed.error, failed.failure
                recently_created = self._recent.contains(key_ref)
                wait = policy.delay(attempt)
                out_of_time = time.monotonic() - started + wait > policy.deadline
                if (
                    attempt >= policy.max_attempts
                    or out_of_time
                    or not policy.should_retry(error, failure, call.repeat, recently_created=recently_created)
                ):
                    raise error from None
                log.debug(
                    "retrying KMS call",
                    extra={"fields": {"operation": call.path, "attempt": attempt, "code": error.identifier}},
                )
                await asyncio.sleep(wait)
                continue
            self._recent.seen(key_ref)
            return answer

    async def _send_once(self, call: WireCall, url: str, raw_body: bytes, limits: aiohttp.ClientTimeout) -> Any:
        method = call.method
        headers = sign_headers(
            method,
            url,
            {"Content-Type": JSON_CONTENT_TYPE, "X-Project-Id": self.project_id},
            raw_body,
            self._credentials,
        )
        try:
            # never follow a redirect: the body may hold key material (encrypt-datakey's plaintext)
            async with self._session.request(
                method,
                URL(url, encoded=True),
                data=raw_body or None,
                headers=headers,
                allow_redirects=False,
                timeout=limits,
            ) as response:
                status, payload = response.status, await _bounded_answer(response)
                location = response.headers.get("Location", "")
        except (aiohttp.ClientConnectorCertificateError, aiohttp.ClientSSLError) as error:
            # not transient: repeating cannot make an untrusted certificate trusted
            raise Unavailable(
                f"TLS with the KMS at {self.endpoint} failed ({type(error).__name__}); check ca_file"
            ) from None
        except aiohttp.ClientConnectorError as error:
            raise _AttemptFailed(
                Unavailable(f"cannot connect to the KMS at {self.endpoint}: {error.os_error.strerror or error}"),
                Failure.NOT_SENT,
            ) from None
        except (aiohttp.ClientError, TimeoutError) as error:
            reason = type(error).__name__
            raise _AttemptFailed(
                Unavailable(f"no answer from the KMS at {self.endpoint} ({reason})"), Failure.MAYBE_RAN
            ) from None
        if status >= 400:
            raise _AttemptFailed(_tame(v1_errors.error_from_wire(status, payload)), Failure.ANSWERED)
        if 300 <= status < 400:  # not transient: a repeat is redirected the same way
            raise Unavailable(
                f"the KMS at {self.endpoint} answered HTTP {status}, a redirect to {location[:200]!r}: requests "
                f"carrying key material are not sent elsewhere; set the endpoint to the KMS's own URL"
            )
        if not payload.strip():
            return {}
        try:
            answer = json.loads(payload)
        except ValueError:
            raise _AttemptFailed(
                Unavailable(f"the KMS answered HTTP {status} with a body that is not JSON"), Failure.MAYBE_RAN
            ) from None
        # the decoders read fields of an object: null, a string or a number there would escape as a TypeError
        if not isinstance(answer, dict) and not (call.array and isinstance(answer, list)):
            raise _AttemptFailed(
                Unavailable(f"the KMS answered HTTP {status} with JSON that is not a JSON object"), Failure.MAYBE_RAN
            )
        return answer

    async def close(self) -> None:
        await self._session.close()


async def _bounded_answer(response: aiohttp.ClientResponse) -> bytes:
    """The answer's body, refused unread past :data:`MAX_ANSWER_BYTES` (not transient: not repeated)."""
    body = bytearray()
    if (response.content_length or 0) <= MAX_ANSWER_BYTES:
        async for chunk in response.content.iter_any():
            body += chunk
            if len(body) > MAX_ANSWER_BYTES:
                break
        else:
            return bytes(body)
    raise Unavailable(f"the KMS at {response.url.origin()} answered more than {MAX_ANSWER_BYTES:,} bytes")


def _tame(error: KMSError) -> KMSError:
    """The error with the backend's message and code bounded and escaped (:mod:`.backend_text`)."""
    message = backend_text(error.message)
    code = backend_text(error.code, MAX_CODE) if error.code else error.code
    if message == error.message and code == error.code:
        return error
    return type(error)(message, reason=error.reason, code=code)


class _AttemptFailed(Exception):
    def __init__(self, error: KMSError, failure: Failure) -> None:
        super().__init__(error.message)
        self.error = error
        self.failure = failure


def _json_body(body: Mapping[str, Any]) -> bytes:
    """UTF-8 JSON, not \\u escapes: an emoji takes 4 bytes instead of 12, so a key with the CRD's maximum
    tags of non-ASCII text fits the server's 64 KiB body limit. A string that is not valid Unicode (a lone
    surrogate, from surrogate-escaped bytes) has no UTF-8: escaped instead, for the KMS to refuse."""
    try:
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return json.dumps(body, separators=(",", ":")).encode()
