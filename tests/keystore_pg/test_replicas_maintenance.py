"""Maintenance on replicas sharing one database: exactly one replica runs it, another takes it over after a kill -9."""

from __future__ import annotations

import time
from pathlib import Path

import psycopg
from replicas_support import PROJECT, metric, replicas

from kubekms.backend import KeyState
from kubekms.devenv.kmsserver import KMSServer
from kubekms.devenv.processes import wait_for

_INTERVAL = 0.2  # seconds between maintenance passes


def _make_due(database_url: str, key_id: str) -> None:
    """Moves the deletion date to now: the wire's shortest pending window is 7 days (this is the test's clock)."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(
            f"UPDATE {PROJECT}.keys SET deletion_date = extract(epoch FROM now()) WHERE key_id = %s", (key_id,)
        )


def _passes(servers: list[KMSServer]) -> list[float]:
    return [metric(server, "kubekms_server_maintenance_passes_total") for server in servers]


def _destroyed(servers: list[KMSServer]) -> float:
    return sum(metric(server, "kubekms_server_keys_destroyed_total") for server in servers)


def _holder(servers: list[KMSServer], floor: list[float]) -> KMSServer:
    """The one replica whose pass count grew past ``floor`` by 3 passes while the others' stayed."""
    wait_for(lambda: max(now - before for now, before in zip(_passes(servers), floor, strict=True)) >= 3,
             30, "three maintenance passes")  # fmt: skip
    grown = [server for server, now, before in zip(servers, _passes(servers), floor, strict=True) if now > before]
    assert len(grown) == 1, f"maintenance ran on {len(grown)} replicas"
    return grown[0]


def test_one_replica_runs_maintenance_and_another_takes_over_after_kill(tmp_path: Path, database_url: str) -> None:
    with replicas(tmp_path, database_url, maintenance_interval=_INTERVAL) as servers:
        first, second = (servers[0].call("create_key", name) for name in ("doomed-1", "doomed-2"))
        for key in (first, second):
            servers[1].call("schedule_key_deletion", key.key_id, 7)
        holder = _holder(servers, [0.0] * len(servers))
        _make_due(database_url, first.key_id)
        wait_for(lambda: servers[2].call("describe_key", first.key_id).state is KeyState.DESTROYED, 30,
                 "the first key destroyed")  # fmt: skip
        survivors = [server for server in servers if server is not holder]
        floor = _passes(survivors)
        _holder([holder, *survivors], [0.0, *floor])  # still the holder alone, passes later
        assert _destroyed(servers) == 1  # destroyed once, by one pass of one replica

        holder.kill()  # kill -9: its session ends, and with it the advisory lock
        killed_at = time.monotonic()
        new_holder = _holder(survivors, floor)
        takeover = time.monotonic() - killed_at
        _make_due(database_url, second.key_id)
        wait_for(lambda: survivors[0].call("describe_key", second.key_id).state is KeyState.DESTROYED, 30,
                 "the second key destroyed by the new holder")  # fmt: skip
        assert metric(new_holder, "kubekms_server_keys_destroyed_total") == 1
        assert _destroyed(survivors) == 1
        print(f"maintenance takeover after kill -9: {takeover:.2f}s (pass interval {_INTERVAL}s)")
    lines = [line for server in servers for line in server.log.read_text().splitlines() if '"maintenance pass"' in line]
    assert len(lines) == 2 and first.key_id in lines[0] and second.key_id in lines[1]
