"""The projects of a process share one connection pool per database URL, and never each other's schema.

A connection serves any project: each checkout enters its project's schema first. Here two projects'
calls run interleaved from several threads, on connections that served the other project just before
(past psycopg's prepare threshold, so prepared statements are reused across schemas too), and
neither ever sees a row of the other.
"""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg
import pytest
from race_support import fire

from kubekms.errors import NotFound
from kubekms.keystore import Keystore
from kubekms.keystore.postgres import POOL_SIZE

CALLS = 40  # per thread: well past psycopg's prepare threshold (5) on every pooled connection


def connections(database_url: str) -> int:
    with psycopg.connect(database_url, autocommit=True) as connection:
        row = connection.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    return int(row[0]) if row else 0


def test_two_projects_interleaved_on_one_pool_never_see_each_others_rows(tmp_path: Path, database_url: str) -> None:
    stores = [Keystore(tmp_path / name, init=True, database_url=database_url) for name in ("alpha", "beta")]
    try:
        own = [{store.create_key(f"{index}-first").key_id} for index, store in enumerate(stores)]
        lock = threading.Lock()

        def work(index: int) -> None:
            store, other = stores[index % 2], stores[1 - index % 2]
            for number in range(CALLS):
                made = store.create_key(f"{index % 2}-{index}-{number}").key_id
                with lock:
                    own[index % 2].add(made)
                listed = {key.key_id for key in store.list_keys(limit=1000).keys}
                assert not listed & own[1 - index % 2], "a project listed the other's keys"
                assert store.describe_key(made).key_id == made
                with pytest.raises(NotFound):
                    other.describe_key(made)

        outcomes = fire([lambda n=n: work(n) for n in range(4)])
        assert not [o for o in outcomes if isinstance(o, BaseException)], outcomes
        for index, store in enumerate(stores):
            assert {key.key_id for key in store.list_keys(limit=1000).keys} == own[index]
    finally:
        for store in stores:
            store.close()


def test_a_process_holds_one_pool_whatever_its_projects(tmp_path: Path, database_url: str) -> None:
    stores = [Keystore(tmp_path / f"tenant{n}", init=True, database_url=database_url) for n in range(8)]
    try:
        for store in stores:
            store.create_key("k")
        assert connections(database_url) <= POOL_SIZE[0] + 1  # the idle minimum (+1 the pool may be adding)
    finally:
        for store in stores:
            store.close()
    assert connections(database_url) == 0  # the last keystore closed the pool
