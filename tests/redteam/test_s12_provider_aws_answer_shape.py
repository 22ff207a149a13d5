"""Provider ``aws``: a success answer of the wrong shape is Unavailable, never a bare exception.

A 200 whose body is not JSON, is JSON ``[]`` or ``null``, lacks the output member the operation
returns (``KeyMetadata``, ``Plaintext``, ``NextMarker`` of a truncated page) or holds a member of
the wrong type raised KeyError, AttributeError or binascii.Error (from botocore's parser or from
the provider reading the answer) past callers that handle KMSError only: the plugin answered
gRPC INTERNAL with a traceback, the operator logged one per retry, the CLI printed one. The
kubekms server never answers so, hence the aiohttp app standing in for it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from fake_backends import AWS_JSON, KEY_ID, answering, aws_backend

from kubekms.errors import Unavailable

ANSWERS = [
    b"not json",
    b"[]",
    b"null",
    b'{"KeyMetadata": "x", "Keys": "x", "Plaintext": 5}',
    b"{}",
    b'{"Plaintext": "!!not base64", "Keys": [{"KeyId": "k"}], "Truncated": true}',
]
CALLS: dict[str, Callable[[Any], Awaitable[object]]] = {
    "describe_key": lambda backend: backend.describe_key(KEY_ID),
    "create_key": lambda backend: backend.create_key(""),
    "decrypt_data_key": lambda backend: backend.decrypt_data_key(KEY_ID, b"x" * 40),
    "list_keys": lambda backend: backend.list_keys(),
}


@pytest.mark.parametrize("answer", ANSWERS, ids=[answer[:20].decode() for answer in ANSWERS])
async def test_an_answer_of_the_wrong_shape_is_unavailable(answer: bytes) -> None:
    async with aws_backend(answering(answer, AWS_JSON)) as backend:
        for name, call in CALLS.items():
            try:
                await call(backend)
            except Unavailable:
                continue
            except Exception as error:  # the point: which class escapes
                pytest.fail(f"{name}: {type(error).__name__} escaped, not Unavailable")
            # an answer may suit an operation (ListKeys of {} is an empty page): then nothing is refused
            assert answer in (b"not json", b"{}") and name == "list_keys", f"{name} took {answer!r}"
