"""A data key of another length than the one asked for is refused, not handed on.

create_data_key(length=32) returned whatever plaintext the backend answered: 16 bytes made the
plugin's KEK an AES-128 key without a word, 8 bytes made AESGCM raise a bare ValueError in the
plugin (gRPC INTERNAL). The REST and AWS providers now check the length of the plaintext they were
answered. The kubekms server always answers the length asked, hence aiohttp apps standing in for it.
"""

from __future__ import annotations

import base64

import pytest
from fake_backends import AWS_JSON, KEY_ID, answering, aws_backend, rest_client

from kubekms.errors import Unavailable


@pytest.mark.parametrize("answered", [8, 16, 33])
async def test_a_rest_data_key_of_another_length_is_refused(answered: int) -> None:
    answer = {"key_id": KEY_ID, "plain_text": "11" * answered, "cipher_text": "22" * 60}
    async with rest_client(answering(answer)) as client:
        with pytest.raises(Unavailable, match="data key of"):
            await client.create_data_key(KEY_ID, length=32)
        assert len((await client.create_data_key(KEY_ID, length=answered)).plaintext or b"") == answered


@pytest.mark.parametrize("answered", [8, 16, 33])
async def test_an_aws_data_key_of_another_length_is_refused(answered: int) -> None:
    answer = {
        "KeyId": f"arn:aws:kms:eu-west-1:111122223333:key/{KEY_ID}",
        "Plaintext": base64.b64encode(b"\x11" * answered).decode(),
        "CiphertextBlob": base64.b64encode(b"\x22" * 60).decode(),
    }
    async with aws_backend(answering(answer, AWS_JSON)) as backend:
        with pytest.raises(Unavailable, match="data key of"):
            await backend.create_data_key(KEY_ID, length=32)
