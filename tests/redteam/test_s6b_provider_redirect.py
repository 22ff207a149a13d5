"""The REST providers never follow a redirect: their requests carry key material.

encrypt-datakey sends the plaintext data key. aiohttp follows a 307/308 by default and sends the
same body to whatever ``Location`` names (another host, plain HTTP), then took that host's answer
as the wrapped key. A redirecting endpoint (a misconfigured ingress, or a hijacked one) is a fault
our server cannot produce, so two small aiohttp apps stand in for it: one redirects, one records
what reaches it. Expected: a precise refusal naming the redirect, nothing sent to the other host.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web

from kubekms.credentials import Credentials
from kubekms.errors import KMSError
from kubekms.providers import BackendConfig, open_backend


async def started(handler: Callable[[web.Request], Awaitable[web.Response]]) -> tuple[web.AppRunner, int]:
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
