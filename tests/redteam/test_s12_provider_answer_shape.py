"""The REST providers refuse a success answer that is JSON but not a JSON object, as a KMSError.

Every v1.0 answer but list-aliases' is a JSON object. A 200 carrying ``null``, ``[]``, a string
or a number (a gateway, a proxy or a broken backend) reached the decoders, which called
``.get`` on it: an AttributeError or TypeError escaped to the callers, who handle KMSError
only: the plugin logged a traceback ("backend poll failed unexpectedly") without a status
reason and answered Encrypt with gRPC INTERNAL, the CLI printed a traceback. Our server never
answers so, hence the small aiohttp app standing in for the backend; list-aliases, whose answer
is a JSON array of pages, is checked against the real server by tests/providers.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web

from kubekms.credentials import Credentials
from kubekms.errors import Unavailable
from kubekms.providers.rest import RestBackend
from kubekms.providers.retry import RetryPolicy

KEY_ID = "0d0466b0-e727-4d9c-b35d-f84bb474a37f"


@pytest.mark.parametrize("answer", [None, [], ["key_info"], "key_info", 42, True])
@pytest.mark.parametrize("operation", ["describe_key", "create_data_key", "generate_random", "list_keys"])
async def test_an_answer_that_is_not_a_json_object_is_unavailable(answer: object, operation: str) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=json.dumps(answer), content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    policy = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.01, deadline=5)
    client = RestBackend(f"http://127.0.0.1:{port}", "p1", Credentials("AKTEST", "sk-test"), retry=policy)
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "describe_key": lambda: client.describe_key(KEY_ID),
        "create_data_key": lambda: client.create_data_key(KEY_ID),
        "generate_random": lambda: client.generate_random(16),
        "list_keys": lambda: client.list_keys(),
    }
    try:
        with pytest.raises(Unavailable, match="not a JSON object"):
            await calls[operation]()
    finally:
        await client.close()
        await runner.cleanup()
