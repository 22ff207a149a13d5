"""Retries of the REST client against real server processes, and faults a real server cannot make.

A server that is down, restarted mid-retry or never comes back is the real ``kubekms server``
(launcher). A server that drops the connection after reading a request, answers 429 or
answers NotFound right after a create cannot be caused on demand with the real one, so
:class:`ScriptedServer` (a raw asyncio TCP server) plays those faults; it is the only fake here.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kubekms.devenv.kmsserver import KMSServer, kms_server
from kubekms.errors import NotFound, Unavailable
from kubekms.providers import BackendConfig, Credentials
from kubekms.providers.rest import RestBackend, open_rest_backend
from kubekms.providers.retry import RetryPolicy

CREDENTIALS = Credentials(access_key="AKTEST", secret_key="not-checked-by-the-scripted-server")


class CountingJitter:
    """The policy's random source, counting the waits (= retries) it was asked for."""

    def __init__(self) -> None:
        self.waits = 0

    def __call__(self, low: float, high: float) -> float:
        self.waits += 1
        return high


async def _until(condition: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[KMSServer]:
    with kms_server(tmp_path / "kms") as running:
        yield running


async def _client(server: KMSServer, policy: RetryPolicy) -> RestBackend:
    config = BackendConfig(
        provider="kubekms",
        endpoint=server.endpoint,
        project_id=server.project_id,
        credentials_file=server.credentials_file("admin"),
    )
    return await open_rest_backend(config, retry=policy)


async def test_call_succeeds_when_the_server_comes_back_mid_retry(server: KMSServer) -> None:
    jitter = CountingJitter()
    policy = RetryPolicy(max_attempts=1000, base_delay=0.05, max_delay=0.2, deadline=120, random_source=jitter)
    client = await _client(server, policy)
    try:
        key = await client.create_key(f"comeback-{uuid.uuid4().hex[:8]}")
        data_key = await client.create_data_key(key.key_id)
        server.stop()
        describe = asyncio.create_task(client.describe_key(key.key_id))
        decrypt = asyncio.create_task(client.decrypt_data_key(key.key_id, data_key.ciphertext))
        # create-key may run twice only if the first attempt never reached the server: refused connections
        create = asyncio.create_task(client.create_key(f"after-{uuid.uuid4().hex[:8]}"))
        await _until(lambda: jitter.waits >= 6, 30, "several refused attempts")
        assert not describe.done() and not decrypt.done() and not create.done()
        await asyncio.to_thread(server.start)
        assert (await describe).key_id == key.key_id
        assert await decrypt == data_key.plaintext
        created = await create
        assert await client.instance_count() == 2
        assert (await client.describe_key(created.alias)).key_id == created.key_id
    finally:
        await client.close()


async def test_a_server_that_stays_down_gives_unavailable_within_the_deadline(server: KMSServer) -> None:
    jitter = CountingJitter()
    policy = RetryPolicy(max_attempts=1000, base_delay=0.05, max_delay=0.2, deadline=2.0, random_source=jitter)
    client = await _client(server, policy)
    try:
        await client.check_health()
        server.stop()
        started = time.monotonic()
        with pytest.raises(Unavailable, match="cannot connect"):
            await client.generate_random(32)
        elapsed = time.monotonic() - started
        assert elapsed <= policy.deadline + 1.0
        assert jitter.waits >= 5
        with pytest.raises(Unavailable):
            await client.check_health()
    finally:
        await client.close()


class ScriptedServer:
    """Answers each path from a script: ``"drop"`` closes the connection after reading the request;
    ``(status, body)`` answers. The last entry of a path's script repeats."""

    def __init__(self, script: dict[str, list[object]]) -> None:
        self.script = script
        self.requests: dict[str, int] = defaultdict(int)
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> ScriptedServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *header_lines = head.decode().split("\r\n")
                length = 0
                for line in header_lines:
                    name, _, value = line.partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                await reader.readexactly(length)
                path = request_line.split()[1].split("?")[0].rsplit("/kms/", 1)[-1]
                index = self.requests[path]
                self.requests[path] += 1
                steps = self.script[path]
                step = steps[min(index, len(steps) - 1)]
                if step == "drop":
                    writer.close()
                    return
                status, body = step  # type: ignore[misc]
                payload = json.dumps(body).encode()
                head = (
                    f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
                )
                writer.write(head.encode() + payload)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


def _scripted_client(server: ScriptedServer, policy: RetryPolicy) -> RestBackend:
    return RestBackend(f"http://127.0.0.1:{server.port}", "p1", CREDENTIALS, retry=policy)


FAST = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.02, deadline=10)
KEY_ID = "0d0466b0-e727-4d9c-b35d-f84bb474a37f"
DETAILS = {"key_id": KEY_ID, "key_alias": "k", "key_state": "2", "creation_date": "1502799822000"}


async def test_a_call_that_may_have_run_is_repeated_only_when_harmless() -> None:
    async with ScriptedServer({"rotate-on-demand": ["drop"], "get-key-rotation-status": ["drop"]}) as fake:
        client = _scripted_client(fake, FAST)
        try:
            with pytest.raises(Unavailable):
                await client.rotate_key(KEY_ID)
            assert fake.requests["rotate-on-demand"] == 1  # a repeat could rotate twice
            with pytest.raises(Unavailable):
                await client.get_rotation_status(KEY_ID)
            assert fake.requests["get-key-rotation-status"] == FAST.max_attempts
        finally:
            await client.close()


async def test_server_errors_repeat_reads_but_not_creates() -> None:
    unavailable = (503, {"error": {"error_code": "KMS.0104", "error_msg": "busy"}})
    ok = (200, {"key_info": DETAILS})
    async with ScriptedServer({"describe-key": [unavailable, unavailable, ok], "create-key": [unavailable]}) as fake:
        client = _scripted_client(fake, FAST)
        try:
            assert (await client._details(KEY_ID)).key_id == KEY_ID
            assert fake.requests["describe-key"] == 3
            with pytest.raises(Unavailable):
                await client.create_key("k")
            assert fake.requests["create-key"] == 1
        finally:
            await client.close()


async def test_throttling_is_repeated_even_for_creates() -> None:
    throttled = (429, {"error": {"error_code": "KMS.0105", "error_msg": "slow down"}})
    created = (200, {"key_info": {"key_id": KEY_ID}})
    script = {
        "create-key": [throttled, throttled, created],
        "describe-key": [(200, {"key_info": DETAILS})],
        f"{KEY_ID}/tags": [(200, {"tags": []})],
        "aliases": [(200, [{"aliases": [{"alias": "k"}], "page_info": {}}])],
    }
    async with ScriptedServer(script) as fake:
        client = _scripted_client(fake, FAST)
        try:
            assert (await client.create_key("k")).key_id == KEY_ID
            assert fake.requests["create-key"] == 3
        finally:
            await client.close()


async def test_not_found_right_after_create_is_retried_then_not() -> None:
    not_found = (404, {"error": {"error_code": "KMS.0207", "error_msg": "no such key"}})
    script = {
        "create-key": [(200, {"key_info": {"key_id": KEY_ID}})],
        "describe-key": [not_found, not_found, (200, {"key_info": DETAILS}), not_found],
        f"{KEY_ID}/tags": [(200, {"tags": []})],
        "aliases": [(200, [{"aliases": [{"alias": "k"}], "page_info": {}}])],
    }
    async with ScriptedServer(script) as fake:
        client = _scripted_client(fake, FAST)
        try:
            assert (await client.create_key("k")).key_id == KEY_ID
            assert fake.requests["describe-key"] == 3
            with pytest.raises(NotFound):  # the key was seen: NotFound is now the truth, not lag
                await client.describe_key(KEY_ID)
            assert fake.requests["describe-key"] == 4
        finally:
            await client.close()


async def test_describe_on_a_cloud_without_the_alias_api_reports_the_primary_alias() -> None:
    script = {
        "describe-key": [(200, {"key_info": DETAILS})],
        f"{KEY_ID}/tags": [(200, {"tags": [{"key": "a", "value": "1"}]})],
        "aliases": [(404, {"error_code": "APIGW.0101", "error_msg": "The API does not exist"})],
    }
    async with ScriptedServer(script) as fake:
        client = _scripted_client(fake, FAST)
        try:
            meta = await client.describe_key(KEY_ID)
            assert (meta.aliases, dict(meta.tags)) == (("k",), {"a": "1"})
            assert fake.requests["aliases"] == 1
        finally:
            await client.close()
