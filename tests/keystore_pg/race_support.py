"""Concurrent calls that really overlap (a barrier releases them together), and how each one ended.

Shared by the race tests of replicas (PostgreSQL) and of worker processes (SQLite) in tests/redteam.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import yaml
from botocore.exceptions import ClientError

from kubekms.devenv import postgres
from kubekms.devenv.kmsserver import KMSServer, Principal

TIMEOUT = 30.0  # seconds for every racer to finish
_databases = itertools.count()


def fire(calls: Sequence[Callable[[], Any]]) -> list[Any]:
    """Run every call in its own thread, released at once by a barrier; each one's answer or exception."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int, call: Callable[[], Any]) -> None:
        barrier.wait(TIMEOUT)
        try:
            results[index] = call()
        except Exception as error:  # the outcome is the test's to judge
            results[index] = error

    threads = [threading.Thread(target=run, args=item, daemon=True) for item in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT)
        assert not thread.is_alive(), "a racer did not finish"
    return results


def aws_error(outcome: Any) -> str:
    """The AWS error code of a racer's ClientError, '' for a success (anything else is re-raised)."""
    if isinstance(outcome, ClientError):
        return str(outcome.response["Error"]["Code"])
    if isinstance(outcome, BaseException):
        raise outcome
    return ""


@contextmanager
def fresh_database(server: postgres.Postgres) -> Iterator[str]:
    """A new, empty database on ``server``: its URL."""
    name = f"race_{next(_databases)}"
    with psycopg.connect(server.url, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")  # our own counter, not input
    yield server.database_url(name)


@contextmanager
def workers(
    state_dir: Path, *, count: int = 2, cmk_limit: int = 1000, principals: tuple[Principal, ...] = ()
) -> Iterator[KMSServer]:
    """One server of ``count`` worker processes on its SQLite keystore (project "default", the AWS wire's)."""
    server = KMSServer(state_dir, cmk_limit=cmk_limit, principals=principals)
    config_path = state_dir / "server.yaml"  # written by KMSServer
    config = yaml.safe_load(config_path.read_text())
    config_path.write_text(yaml.safe_dump({**config, "workers": count, "console": {"enabled": False}}))
    server.start()
    try:
        yield server
    finally:
        server.stop()
