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

from collections.abc import Awaitable, Callable

import pytest
from fake_backends import KEY_ID, answering, rest_client

from kubekms.errors import Unavailable
from kubekms.providers.rest import RestBackend
from kubekms.providers.retry import RetryPolicy

CALLS: dict[str, Callable[[RestBackend], Awaitable[object]]] = {
    "describe_key": lambda client: client.describe_key(KEY_ID),
    "create_data_key": lambda client: client.create_data_key(KEY_ID),
    "generate_random": lambda client: client.generate_random(16),
    "list_keys": lambda client: client.list_keys(),
}


@pytest.mark.parametrize("answer", [None, [], ["key_info"], "key_info", 42, True])
@pytest.mark.parametrize("operation", list(CALLS))
async def test_an_answer_that_is_not_a_json_object_is_unavailable(answer: object, operation: str) -> None:
    policy = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.01, deadline=5)
    async with rest_client(answering(answer), policy) as client:
        with pytest.raises(Unavailable, match="not a JSON object"):
            await CALLS[operation](client)
