"""A stand-in KMS backend for the provider tests: an aiohttp app answering every request with one handler.

Only for answers the kubekms server never gives (bodies of the wrong shape, hostile error text, data keys
of the wrong length); where the real server can produce the situation, the tests use it.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web

from kubekms.credentials import Credentials
from kubekms.providers import BackendConfig
from kubekms.providers.aws import open_backend as open_aws_backend
from kubekms.providers.rest import RestBackend
from kubekms.providers.retry import RetryPolicy

KEY_ID = "0d0466b0-e727-4d9c-b35d-f84bb474a37f"
CREDENTIALS = Credentials("AKTEST", "sk-test")
AWS_JSON = "application/x-amz-json-1.1"
Handler = Callable[[web.Request], Awaitable[web.Response]]


def answering(answer: object, content_type: str = "application/json", status: int = 200) -> Handler:
    """Every request answered ``answer``: bytes as they are, anything else as JSON."""
    body = answer if isinstance(answer, bytes) else json.dumps(answer).encode()

    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=status, body=body, content_type=content_type)

    return handler


@contextlib.asynccontextmanager
async def stand_in(handler: Handler) -> AsyncIterator[str]:
    """The stand-in backend's endpoint while it serves."""
    app = web.Application(client_max_size=1 << 20)
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def rest_client(handler: Handler, policy: RetryPolicy | None = None) -> AsyncIterator[RestBackend]:
    """A v1.0 REST client of the stand-in (one attempt unless ``policy`` says otherwise)."""
    async with stand_in(handler) as endpoint:
        client = RestBackend(endpoint, "p1", CREDENTIALS, retry=policy or RetryPolicy(max_attempts=1, deadline=5))
        try:
            yield client
        finally:
            await client.close()


@contextlib.asynccontextmanager
async def aws_backend(handler: Handler) -> AsyncIterator[Any]:
    """Provider ``aws`` on the stand-in."""
    async with stand_in(handler) as endpoint:
        config = BackendConfig(provider="aws", endpoint=endpoint, region="eu-west-1", credentials=CREDENTIALS)
        backend = await open_aws_backend(config)
        try:
            yield backend
        finally:
            await backend.close()
