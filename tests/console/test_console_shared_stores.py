"""Sessions, notices and failed sign-ins shared by two connections to one database, on both engines.

Two connections stand for two worker processes (SQLite: the state dir's file) or two replicas
(PostgreSQL: the shared database); both are real, PostgreSQL is Debian's, started for this module.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from kubekms.devenv import postgres
from kubekms.server.console.database import ConsoleDatabase, PostgresConsoleDatabase, SqliteConsoleDatabase
from kubekms.server.console.sessions import SessionStore
from kubekms.server.console.throttle import Limit, SignInThrottle

Connect = Callable[[], ConsoleDatabase]
_numbers = itertools.count()


@pytest.fixture(scope="module")
def pg_server() -> Iterator[postgres.Postgres]:
    with postgres.postgres() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def connect(request: pytest.FixtureRequest, tmp_path: Path) -> Connect:
    """A new connection to the same console database each call."""
    if request.param == "sqlite":
        return lambda: SqliteConsoleDatabase(tmp_path / "console-sessions.db")
    server: postgres.Postgres = request.getfixturevalue("pg_server")
    name = f"console_{next(_numbers)}"
    with psycopg.connect(server.url, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")  # our own counter, not input
    return lambda: PostgresConsoleDatabase(server.database_url(name))


def test_a_session_made_through_one_connection_is_used_and_ended_through_the_other(connect: Connect) -> None:
    one, two = SessionStore(connect(), 60), SessionStore(connect(), 60)
    token, session = one.open("AK1")
    assert two.get(token) == session and two.get(token + "x") is None
    one.add_notice(session, "Key k created.")
    one.add_notice(session, "Tag t saved.")
    taken = two.get(token, take_notices=True)
    assert taken is not None and taken.notices == ("Key k created.", "Tag t saved.")
    shown_again = one.get(token, take_notices=True)
    assert shown_again is not None and shown_again.notices == ()  # shown once
    two.close(token)
    assert one.get(token) is None and two.get(token) is None and len(one) == 0


def test_a_session_ends_at_its_time_for_every_connection(connect: Connect) -> None:
    now = [1000.0]
    one, two = (SessionStore(connect(), 60, clock=lambda: now[0]) for _ in range(2))
    token, session = one.open("AK1")
    now[0] += 59.9
    assert two.get(token) == session
    now[0] += 0.1
    assert two.get(token) is None and one.get(token) is None


def test_failures_through_both_connections_add_up(connect: Connect) -> None:
    limit = Limit(2, 100)
    one, two = (SignInThrottle(connect(), per_access_key=limit) for _ in range(2))
    one.failed("10.0.0.1", "AK1")
    assert two.retry_after("10.0.0.2", "AK1") == 0
    two.failed("10.0.0.2", "AK1")
    assert one.retry_after("10.0.0.3", "AK1") > 0 and two.retry_after("10.0.0.3", "AK1") > 0
    one.succeeded("10.0.0.3", "AK1")
    assert two.retry_after("10.0.0.3", "AK1") == 0
