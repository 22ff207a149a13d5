"""A backend's error text reaches callers bounded and with control characters escaped.

The REST and AWS providers put the backend's own message (and error code or type) into the
KMSError they raise, as it came. The operator copies that message into the KMSKey's status and
its Events, the plugin into its logs and /status, the CLI onto the terminal: a backend (or a
proxy in front of it) answering a message of megabytes made a status patch the API server
refuses, and one with ESC sequences or newlines rewrote a terminal or forged log lines. Our
server never answers so, hence small aiohttp apps standing in for the backend.
"""

from __future__ import annotations

import pytest
from fake_backends import AWS_JSON, KEY_ID, answering, aws_backend, rest_client

from kubekms.errors import InvalidArgument, KMSError
from kubekms.providers.backend_text import backend_text

HOSTILE = "\x1b[2J\x1b[31mforged\nlevel=INFO msg=ok\r\u202e" + "x" * 200_000
LIMIT = 1024  # generous: a bounded message is a few hundred characters


def _assert_tame(error: KMSError) -> None:
    for text in (error.message, error.identifier, str(error)):
        assert len(text) <= LIMIT, f"{len(text)} characters reached the caller"
        assert all(char.isprintable() for char in text), repr(text[:120])
    assert "forged" in error.message  # the start of the backend's message is still there to read


async def test_a_rest_backends_error_message_is_bounded_and_escaped() -> None:
    answer = {"error": {"error_code": "KMS.0308" + HOSTILE, "error_msg": HOSTILE}}
    async with rest_client(answering(answer, status=400)) as client:
        with pytest.raises(InvalidArgument) as raised:
            await client.describe_key(KEY_ID)
        _assert_tame(raised.value)


async def test_an_aws_backends_error_message_is_bounded_and_escaped() -> None:
    answer = {"__type": "ValidationException", "message": HOSTILE}
    async with aws_backend(answering(answer, AWS_JSON, status=400)) as backend:
        with pytest.raises(InvalidArgument) as raised:
            await backend.describe_key(KEY_ID)
        _assert_tame(raised.value)


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
