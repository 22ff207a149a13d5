"""A replica frozen inside a write transaction must not stop every other replica's writes for hours.

Every keystore write takes the project's PostgreSQL advisory lock for its transaction. A replica that
stops answering while it holds it (SIGSTOP here; in a cluster a frozen VM, a cgroup freeze, or a node
cut off without a FIN, which PostgreSQL notices only by TCP keepalive, two hours by default) kept the
lock, so every write of the project on every other replica waited for it; and since a replica's writer
waits holding the keystore's process lock, that replica's reads of the project waited too.
Expected: the database ends the frozen session after a bounded time, and the other replica's write
then goes through.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "keystore_pg"))
from race_support import aws_error, fire, fresh_database
from replicas_support import PROJECT, replicas

from kubekms.devenv import postgres
from kubekms.devenv.kmsserver import KMSServer
from kubekms.devenv.processes import wait_for

ACCOUNT = "default"  # the AWS wire's account of the admin principal
BOUND = 20.0  # seconds the other replica's write may wait (it waited until the frozen one came back)
# the keystore's per-project transaction locks are one bigint (objsubid 1); the maintenance lock is two int4s
_HOLDER_SQL = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1"


def processes(server: KMSServer) -> list[int]:
    """The server's process and its children (a worker, when there is one)."""
    assert server.pid is not None
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    return [server.pid, *map(int, children)]


def signal_all(pids: list[int], number: signal.Signals) -> None:
    for pid in pids:
        os.kill(pid, number)


@contextmanager
def frozen_holding_the_lock(server: KMSServer, database_url: str, writing: threading.Event) -> Iterator[None]:
    """SIGSTOP ``server`` at an instant it holds the project's write lock (tried again until it does)."""
    pids = processes(server)
    try:
        with psycopg.connect(database_url, autocommit=True) as connection:
            deadline = time.monotonic() + 30
            while True:
                assert writing.is_set() and time.monotonic() < deadline, "never caught holding the lock"
                signal_all(pids, signal.SIGSTOP)
                row = connection.execute(_HOLDER_SQL).fetchone()
                if row is not None and row[0]:
                    break
                signal_all(pids, signal.SIGCONT)
                wait_for(lambda: (connection.execute(_HOLDER_SQL).fetchone() or (0,))[0] > 0, 10, "a write")
        yield
    finally:
        signal_all(pids, signal.SIGCONT)


def test_a_replica_frozen_inside_a_write_does_not_block_the_others_writes(tmp_path: Path) -> None:
    with (
        postgres.postgres() as server,
        fresh_database(server) as database_url,
        replicas(tmp_path, database_url, count=2, projects=(PROJECT, ACCOUNT)) as (frozen, other),
    ):
        key = other.aws_client().create_key(Description="frozen")["KeyMetadata"]["KeyId"]
        writer, writing, stop = frozen.aws_client(), threading.Event(), threading.Event()

        def write_load() -> None:
            number = 0
            while not stop.is_set():
                writing.set()
                number += 1
                try:
                    writer.tag_resource(KeyId=key, Tags=[{"TagKey": "n", "TagValue": str(number)}])
                except Exception:  # the frozen write ends with its session: not this test's subject
                    return

        load = threading.Thread(target=write_load, daemon=True)
        load.start()
        try:
            with frozen_holding_the_lock(frozen, database_url, writing):
                started = time.monotonic()
                outcome = fire(
                    [lambda: other.aws_client().tag_resource(KeyId=key, Tags=[{"TagKey": "o", "TagValue": "v"}])]
                )
                waited = time.monotonic() - started
                assert aws_error(outcome[0]) == ""
                assert waited < BOUND, waited
                print(f"the other replica's write waited {waited:.1f}s for the frozen one's lock")
        finally:
            stop.set()
        load.join(30)
        tags = other.aws_client().list_resource_tags(KeyId=key)["Tags"]
        assert {"TagKey": "o", "TagValue": "v"} in tags
