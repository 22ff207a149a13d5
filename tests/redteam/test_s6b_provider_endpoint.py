"""What the REST providers do with a KMS endpoint that misbehaves: redirects, answers of any size.

They never follow a redirect: their requests carry key material.
encrypt-datakey sends the plaintext data key. aiohttp follows a 307/308 by default and sends the
same body to whatever ``Location`` names (another host, plain HTTP), then took that host's answer
as the wrapped key. A redirecting endpoint (a misconfigured ingress, or a hijacked one) is a fault
our server cannot produce, so two small aiohttp apps stand in for it: one redirects, one records
what reaches it. Expected: a precise refusal naming the redirect, nothing sent to the other host.

They read an answer only up to a bound: ``response.read()`` took whatever the endpoint sent, so a
hostile or broken one could make the operator or the plugin allocate without limit.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web

from kubekms.credentials import Credentials
from kubekms.errors import KMSError
from kubekms.providers import BackendConfig, open_backend
from kubekms.providers.rest_transport import MAX_ANSWER_BYTES


async def started(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> tuple[web.AppRunner, int]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, runner.addresses[0][1]


@pytest.mark.parametrize("redirect", [web.HTTPTemporaryRedirect, web.HTTPPermanentRedirect, web.HTTPFound])
def test_a_redirect_is_refused_and_no_key_material_follows_it(redirect: type[web.HTTPMove]) -> None:
    received: list[bytes] = []

    async def record(request: web.Request) -> web.Response:
        received.append(await request.read())
        return web.json_response({"key_id": "k", "cipher_text": "00", "datakey_length": "32"})

    async def run() -> BaseException | None:
        sink, sink_port = await started(record)

        async def send_elsewhere(request: web.Request) -> web.Response:
            raise redirect(f"http://127.0.0.1:{sink_port}{request.path}")

        front, port = await started(send_elsewhere)
        config = BackendConfig(
            provider="kubekms", endpoint=f"http://127.0.0.1:{port}", credentials=Credentials("AK", "SK")
        )
        backend = await open_backend(config)
        try:
            await backend.encrypt_data_key("k", b"\x11" * 32)
        except KMSError as error:
            return error
        finally:
            await backend.close()
            await front.cleanup()
            await sink.cleanup()
        return None

    error = asyncio.run(run())
    assert received == []
    assert isinstance(error, KMSError) and "redirect" in error.message, error


def test_an_answer_beyond_the_bound_is_refused_unread() -> None:
    size = MAX_ANSWER_BYTES + 1024 * 1024

    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):  # the client stops reading: that is the point
            for _ in range(size // 65536):
                await response.write(b" " * 65536)
        return response

    async def run() -> BaseException | None:
        front, port = await started(endless)
        config = BackendConfig(
            provider="kubekms", endpoint=f"http://127.0.0.1:{port}", credentials=Credentials("AK", "SK")
        )
        backend = await open_backend(config)
        try:
            await backend.describe_key("k")
        except KMSError as error:
            return error
        finally:
            await backend.close()
            await front.cleanup()
        return None

    error = asyncio.run(run())
    assert isinstance(error, KMSError) and f"{MAX_ANSWER_BYTES:,} bytes" in error.message, error


def test_a_large_answer_within_the_bound_is_read_whole() -> None:
    """Several MiB arrive in many chunks: every one is read, not only the first."""
    padding = "x" * (4 * 1024 * 1024)

    async def large(request: web.Request) -> web.Response:
        return web.json_response({"keys": [], "key_details": [], "truncated": "false", "total": 7, "pad": padding})

    async def run() -> int:
        front, port = await started(large)
        config = BackendConfig(
            provider="kubekms", endpoint=f"http://127.0.0.1:{port}", credentials=Credentials("AK", "SK")
        )
        backend = await open_backend(config)
        try:
            return (await backend.list_keys()).total
        finally:
            await backend.close()
            await front.cleanup()

    assert asyncio.run(run()) == 7
