"""Replicas under faults: kill -9 of one of 3 servers and the database connections dropped under load."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg
from prometheus_client.parser import text_string_to_metric_families
from psycopg.conninfo import conninfo_to_dict
from replicas_support import RoundRobinProxy, drop_connections, replicas

from kubekms.backend import Backend
from kubekms.devenv.kmsserver import KMSServer
from kubekms.devenv.processes import wait_for
from kubekms.errors import KMSError
from kubekms.providers import open_backend

_CLIENTS = 4  # concurrent callers
_BEFORE, _AFTER = 150, 150  # data keys acknowledged before the faults, then after them


async def _load(backend: Backend, key_id: str, acknowledged: dict[bytes, bytes], errors: list[str],
                before: asyncio.Event) -> None:  # fmt: skip
    while len(acknowledged) < _BEFORE + _AFTER:
        if len(acknowledged) >= _BEFORE:
            before.set()
        try:
            data_key = await backend.create_data_key(key_id)
        except KMSError as error:  # surfaced after the provider's retries gave up
            errors.append(f"{type(error).__name__}: {error}")
            continue
        assert data_key.plaintext is not None
        acknowledged[data_key.ciphertext] = data_key.plaintext


def test_kill_9_of_a_replica_and_dropped_database_connections_lose_no_key(tmp_path: Path, database_url: str) -> None:
    with (
        replicas(tmp_path, database_url) as servers,
        RoundRobinProxy([s.port for s in servers]) as proxy,
        psycopg.connect(database_url, autocommit=True) as admin,
    ):
        config = dataclasses.replace(servers[0].backend_config(), endpoint=f"http://127.0.0.1:{proxy.port}")
        victim = servers[1]

        async def run() -> tuple[dict[bytes, bytes], list[str], int, float]:
            backend = await open_backend(config)
            try:
                key = await backend.create_key("fault-load")
                acknowledged: dict[bytes, bytes] = {}
                errors: list[str] = []
                before = asyncio.Event()
                load = [asyncio.create_task(_load(backend, key.key_id, acknowledged, errors, before))
                        for _ in range(_CLIENTS)]  # fmt: skip
                await asyncio.wait_for(before.wait(), 60)
                assert await asyncio.to_thread(_served, victim) > 0  # the victim had its share of the load
                victim.kill()
                dropped = await asyncio.to_thread(drop_connections, admin, database_url)
                started = time.monotonic()
                await asyncio.wait_for(asyncio.gather(*load), 60)
                after = time.monotonic() - started
                lost = [c for c, p in acknowledged.items() if await backend.decrypt_data_key(key.key_id, c) != p]
                assert lost == []
                return acknowledged, errors, dropped, after
            finally:
                await backend.close()

        acknowledged, errors, dropped, after = asyncio.run(run())
        assert len(acknowledged) >= _BEFORE + _AFTER and errors == []
        assert dropped >= 2  # at least each survivor's pooled session was cut
        served = [_served(server) for server in servers if server is not victim]
        assert all(count > 0 for count in served)  # the load went on through both survivors
        print(f"kill -9 + {dropped} dropped database sessions: {len(acknowledged)} data keys acknowledged, "
              f"0 lost, 0 client errors; {_AFTER} more in {after:.2f}s after the faults")  # fmt: skip


def _served(server: KMSServer) -> float:
    """Data-key requests this replica answered (its requests counter, every result code)."""
    with urllib.request.urlopen(f"{server.endpoint}/metrics", timeout=5) as answer:
        families = text_string_to_metric_families(answer.read().decode())
    return sum(sample.value for family in families for sample in family.samples
               if sample.name == "kubekms_server_requests_total"
               and "datakey" in sample.labels["operation"].replace("-", "").replace("_", "").lower())  # fmt: skip


def test_readiness_fails_while_the_database_refuses_and_liveness_does_not(tmp_path: Path, database_url: str) -> None:
    database = conninfo_to_dict(database_url)["dbname"]
    with (
        replicas(tmp_path, database_url, count=1) as (server,),
        psycopg.connect(database_url.replace(f"/{database}?", "/postgres?"), autocommit=True) as admin,
    ):
        assert _status(server, "/readyz") == 200
        admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')  # our own test database
        try:
            drop_connections(admin, database_url)  # and no new connection is accepted until allowed again
            wait_for(lambda: _status(server, "/readyz") == 503, 30, "/readyz failing")
            assert _status(server, "/healthz") == 200  # a database outage never restarts the pod
        finally:
            admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
        wait_for(lambda: _status(server, "/readyz") == 200, 30, "/readyz back")


def _status(server: KMSServer, path: str) -> int:
    try:
        with urllib.request.urlopen(f"{server.endpoint}{path}", timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return error.code
