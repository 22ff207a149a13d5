"""kill -9 during a concurrent burst of create-key and create-datakey: every answered success survives."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

import aiohttp

from kubekms.devenv.kmsserver import KMSServer, kms_server
from kubekms.providers import Credentials
from kubekms.wire.signing import sign_headers

WORKERS = 16
SUCCESSES_BEFORE_KILL = 60


@dataclass
class Answered:
    key_ids: list[str] = field(default_factory=list)
    data_keys: list[tuple[str, str]] = field(default_factory=list)  # (cipher_text, plain_text)


async def post(
    session: aiohttp.ClientSession, server: KMSServer, credentials: Credentials, op: str, body: dict
) -> dict:
    url = f"{server.endpoint}/v1.0/{server.project_id}/kms/{op}"
    raw = json.dumps(body).encode()
    headers = sign_headers("POST", url, {"Content-Type": "application/json"}, raw, credentials)
    async with session.post(url, data=raw, headers=headers) as answer:
        payload = await answer.json(content_type=None)
        if answer.status != 200:
            raise AssertionError(f"{op} answered {answer.status}: {payload}")
        return payload


async def burst_worker(
    worker: int, server: KMSServer, credentials: Credentials, key_id: str, answered: Answered
) -> None:
    async with aiohttp.ClientSession() as session:
        for n in range(100_000):
            try:
                if n % 2:
                    created = await post(
                        session, server, credentials, "create-key", {"key_alias": f"burst-{worker}-{n}"}
                    )
                    answered.key_ids.append(created["key_info"]["key_id"])
                else:
                    data_key = await post(session, server, credentials, "create-datakey", {"key_id": key_id})
                    answered.data_keys.append((data_key["cipher_text"], data_key["plain_text"]))
            except (TimeoutError, aiohttp.ClientError):
                return  # the server died under us: this call was never answered


async def test_answered_calls_survive_kill_minus_nine(tmp_path) -> None:
    with kms_server(tmp_path / "kms", project_id="crash", cmk_limit=100_000) as server:
        credentials = Credentials.from_file(server.credentials_file("admin"))
        async with aiohttp.ClientSession() as session:
            key_id = (await post(session, server, credentials, "create-key", {"key_alias": "dek-key"}))["key_info"][
                "key_id"
            ]
        answered = Answered()
        workers = [asyncio.create_task(burst_worker(i, server, credentials, key_id, answered)) for i in range(WORKERS)]
        deadline = time.monotonic() + 60
        while len(answered.key_ids) + len(answered.data_keys) < SUCCESSES_BEFORE_KILL:
            assert time.monotonic() < deadline, "the burst made no progress"
            await asyncio.sleep(0.01)  # polling the success count, with a deadline
        await asyncio.to_thread(server.kill)
        assert not server.running
        await asyncio.wait_for(asyncio.gather(*workers), timeout=60)
        assert answered.key_ids and answered.data_keys

        await asyncio.to_thread(server.start)
        async with aiohttp.ClientSession() as session:
            for created in answered.key_ids:
                described = await post(session, server, credentials, "describe-key", {"key_id": created})
                assert described["key_info"]["key_state"] == "2"
            for cipher_text, plain_text in answered.data_keys:
                decrypted = await post(
                    session, server, credentials, "decrypt-datakey", {"key_id": key_id, "cipher_text": cipher_text}
                )
                assert decrypted["data_key"] == plain_text
