"""Provider ``aws``: a CreateKey that may have run is not sent again (it would make a second key).

AWS KMS's CreateKey has no idempotency token: every run makes a new key. botocore's ``standard``
retry mode repeats any call after a 5xx or a dropped connection, CreateKey included, so a lost
answer to a CreateKey that did run made a second key, both carrying the caller's tags (the
operator's owner tag): the first one orphaned, enabled and billed. The REST provider's rule
(never repeat create-key once it may have reached the KMS) now holds here too.

The KMS is the real ``kubekms server`` (AWS wire); a lost answer cannot be caused on it, so a
small relay in front of it forwards each request and, for the first CreateKey, reads the
server's answer and closes the client's connection instead of passing it on (a load balancer
or network dropping the answer). It is the only stand-in here, and it creates nothing itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubekms.devenv.kmsserver import KMSServer, kms_server
from kubekms.errors import Unavailable
from kubekms.providers import BackendConfig
from kubekms.providers.aws import open_backend

OWNER_TAG = {"kubekms.io/uid": "5f0c1a52-6d0e-4c55-9d4e-2f3b1c0d9e11"}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[KMSServer]:
    with kms_server(tmp_path / "kms") as running:
        yield running


class AnswerDroppingRelay:
    """Forwards HTTP/1.1 requests to ``upstream``; drops the answer of each operation's first ``drop[op]`` calls."""

    def __init__(self, upstream_port: int, drop: dict[str, int]) -> None:
        self.upstream_port = upstream_port
        self.drop = drop
        self.requests: dict[str, int] = {operation: 0 for operation in drop}
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> AnswerDroppingRelay:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    @staticmethod
    async def _message(reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.decode("latin-1").split("\r\n")[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        return head + await reader.readexactly(length)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request = await self._message(reader)
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
                up_writer.write(request)
                await up_writer.drain()
                answer = await self._message(up_reader)
                up_writer.close()
                for operation, dropped in self.drop.items():
                    if f"TrentService.{operation}\r\n".encode() in request:
                        self.requests[operation] += 1
                        if self.requests[operation] <= dropped:
                            writer.close()
                            return
                writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


def _keys_tagged(server: KMSServer) -> int:
    kms = server.aws_client()
    count = 0
    for key in kms.list_keys()["Keys"]:
        tags = kms.list_resource_tags(KeyId=key["KeyId"]).get("Tags", [])
        count += any(tag["TagKey"] in OWNER_TAG for tag in tags)
    return count


async def test_a_create_key_whose_answer_is_lost_is_not_repeated(server: KMSServer) -> None:
    async with AnswerDroppingRelay(server.port, drop={"CreateKey": 1, "ListKeys": 1}) as relay:
        config = BackendConfig(
            provider="aws",
            endpoint=f"http://127.0.0.1:{relay.port}",
            region="eu-west-1",
            credentials_file=server.credentials_file("admin"),
        )
        backend = await open_backend(config)
        try:
            with pytest.raises(Unavailable):
                await backend.create_key("", tags=OWNER_TAG)
            assert relay.requests["CreateKey"] == 1, "CreateKey was sent again after it may have run"
            assert await asyncio.to_thread(_keys_tagged, server) == 1
            # a read whose answer is lost is still repeated: botocore's retries stand for everything else
            assert len((await backend.list_keys()).keys) == 1
            assert relay.requests["ListKeys"] >= 2
        finally:
            await backend.close()
