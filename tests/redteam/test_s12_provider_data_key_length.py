"""A data key of another length than the one asked for is refused, not handed on.

create_data_key(length=32) returned whatever plaintext the backend answered: 16 bytes made the
plugin's KEK an AES-128 key without a word, 8 bytes made AESGCM raise a bare ValueError in the
plugin (gRPC INTERNAL). The REST and AWS providers now check the length of the plaintext they were
answered. The kubekms server always answers the length asked, hence aiohttp apps standing in for it.
"""

from __future__ import annotations

import base64
import json

import pytest
from aiohttp import web

from kubekms.credentials import Credentials
from kubekms.errors import Unavailable
from kubekms.providers import BackendConfig
from kubekms.providers.aws import open_backend as open_aws_backend
from kubekms.providers.rest import RestBackend
from kubekms.providers.retry import RetryPolicy

KEY_ID = "0d0466b0-e727-4d9c-b35d-f84bb474a37f"


async def _serving(answer: dict[str, str], content_type: str) -> tuple[web.AppRunner, int]:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=json.dumps(answer), content_type=content_type)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, runner.addresses[0][1]


@pytest.mark.parametrize("answered", [8, 16, 33])
async def test_a_rest_data_key_of_another_length_is_refused(answered: int) -> None:
    answer = {"key_id": KEY_ID, "plain_text": "11" * answered, "cipher_text": "22" * 60}
    runner, port = await _serving(answer, "application/json")
    policy = RetryPolicy(max_attempts=1, deadline=5)
    client = RestBackend(f"http://127.0.0.1:{port}", "p1", Credentials("AKTEST", "sk-test"), retry=policy)
    try:
        with pytest.raises(Unavailable, match="data key of"):
            await client.create_data_key(KEY_ID, length=32)
        assert len((await client.create_data_key(KEY_ID, length=answered)).plaintext or b"") == answered
    finally:
        await client.close()
        await runner.cleanup()


@pytest.mark.parametrize("answered", [8, 16, 33])
async def test_an_aws_data_key_of_another_length_is_refused(answered: int) -> None:
    answer = {
        "KeyId": f"arn:aws:kms:eu-west-1:111122223333:key/{KEY_ID}",
        "Plaintext": base64.b64encode(b"\x11" * answered).decode(),
        "CiphertextBlob": base64.b64encode(b"\x22" * 60).decode(),
    }
    runner, port = await _serving(answer, "application/x-amz-json-1.1")
    config = BackendConfig(
        provider="aws",
        endpoint=f"http://127.0.0.1:{port}",
        region="eu-west-1",
        credentials=Credentials("AKTEST", "sk-test"),
    )
    backend = await open_aws_backend(config)
    try:
        with pytest.raises(Unavailable, match="data key of"):
            await backend.create_data_key(KEY_ID, length=32)
    finally:
        await backend.close()
        await runner.cleanup()
