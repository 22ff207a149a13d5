"""A backend's error text reaches callers bounded and with control characters escaped.

The REST and AWS providers put the backend's own message (and error code or type) into the
KMSError they raise, as it came. The operator copies that message into the KMSKey's status and
its Events, the plugin into its logs and /status, the CLI onto the terminal: a backend (or a
proxy in front of it) answering a message of megabytes made a status patch the API server
refuses, and one with ESC sequences or newlines rewrote a terminal or forged log lines. Our
server never answers so, hence small aiohttp apps standing in for the backend.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web

from kubekms.credentials import Credentials
from kubekms.errors import InvalidArgument, KMSError
from kubekms.providers import BackendConfig
from kubekms.providers.aws import open_backend as open_aws_backend
from kubekms.providers.backend_text import backend_text
from kubekms.providers.rest import RestBackend
from kubekms.providers.retry import RetryPolicy

KEY_ID = "0d0466b0-e727-4d9c-b35d-f84bb474a37f"
HOSTILE = "\x1b[2J\x1b[31mforged\nlevel=INFO msg=ok\r\u202e" + "x" * 200_000
LIMIT = 1024  # generous: a bounded message is a few hundred characters


async def _serving(handler: Callable[[web.Request], Awaitable[web.Response]]) -> tuple[web.AppRunner, int]:
    app = web.Application(client_max_size=1 << 20)
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, runner.addresses[0][1]


def _assert_tame(error: KMSError) -> None:
    for text in (error.message, error.identifier, str(error)):
        assert len(text) <= LIMIT, f"{len(text)} characters reached the caller"
        assert all(char.isprintable() for char in text), repr(text[:120])
    assert "forged" in error.message  # the start of the backend's message is still there to read


async def test_a_rest_backends_error_message_is_bounded_and_escaped() -> None:
    async def handler(request: web.Request) -> web.Response:
        body = {"error": {"error_code": "KMS.0308" + HOSTILE, "error_msg": HOSTILE}}
        return web.Response(status=400, text=json.dumps(body), content_type="application/json")

    runner, port = await _serving(handler)
    policy = RetryPolicy(max_attempts=1, deadline=5)
    client = RestBackend(f"http://127.0.0.1:{port}", "p1", Credentials("AKTEST", "sk-test"), retry=policy)
    try:
        with pytest.raises(InvalidArgument) as raised:
            await client.describe_key(KEY_ID)
        _assert_tame(raised.value)
    finally:
        await client.close()
        await runner.cleanup()


async def test_an_aws_backends_error_message_is_bounded_and_escaped() -> None:
    async def handler(request: web.Request) -> web.Response:
        body = {"__type": "ValidationException", "message": HOSTILE}
        return web.Response(status=400, text=json.dumps(body), content_type="application/x-amz-json-1.1")

    runner, port = await _serving(handler)
    config = BackendConfig(
        provider="aws",
        endpoint=f"http://127.0.0.1:{port}",
        region="eu-west-1",
        credentials=Credentials("AKTEST", "sk-test"),
    )
    backend = await open_aws_backend(config)
    try:
        with pytest.raises(InvalidArgument) as raised:
            await backend.describe_key(KEY_ID)
        _assert_tame(raised.value)
    finally:
        await backend.close()
        await runner.cleanup()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("key 0d0466b0 not found: état désactivé", "key 0d0466b0 not found: état désactivé"),
        ("two\nlines\x1b[0m", "two\\nlines\\x1b[0m"),
        ("x" * 600, "x" * 500 + "... (600 characters in all)"),
    ],
)
def test_ordinary_text_is_kept_and_the_rest_escaped_and_cut(text: str, expected: str) -> None:
    assert backend_text(text) == expected
