"""One principal signing in over and over must not sign everyone else out of the console.

The session store holds at most ``MAX_SESSIONS`` rows and, when full, dropped the oldest sessions whoever held them;
a successful sign-in is not throttled, so any principal with a console sign-in (the least privileged one) could end
every other session, an administrator's in the middle of an incident included, by signing in ``MAX_SESSIONS``
times. A full store now drops the oldest sessions of the access key holding the most (the one opening a session
counted with it): a flood ends the flooder's own sessions. Both engines (SQLite and PostgreSQL) run the same SQL.
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

Connect = Callable[[], ConsoleDatabase]
_numbers = itertools.count()
CAPACITY = 8


@pytest.fixture(scope="module")
def pg_server() -> Iterator[postgres.Postgres]:
    with postgres.postgres() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def connect(request: pytest.FixtureRequest, tmp_path: Path) -> Connect:
    if request.param == "sqlite":
        return lambda: SqliteConsoleDatabase(tmp_path / "console-sessions.db")
    server: postgres.Postgres = request.getfixturevalue("pg_server")
    name = f"s12_flood_{next(_numbers)}"
    with psycopg.connect(server.url, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")  # our own counter, not input
    return lambda: PostgresConsoleDatabase(server.database_url(name))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_flood_of_sign_ins_ends_only_the_flooders_sessions(connect: Connect) -> None:
    clock = Clock()
    store = SessionStore(connect(), 3600, clock=clock, capacity=CAPACITY)
    admin, _ = store.open("AK-ADMIN")
    clock.now += 1
    operator, _ = store.open("AK-OPERATOR")
    flood = []
    for _ in range(5 * CAPACITY):
        clock.now += 1
        flood.append(store.open("AK-READER")[0])
    assert len(store) == CAPACITY
    assert store.get(admin) is not None and store.get(operator) is not None  # still signed in
    assert all(store.get(token) for token in flood[-(CAPACITY - 2) :])  # the flooder's newest live
    assert store.get(flood[0]) is None  # its oldest went


def test_a_full_store_of_single_sessions_still_drops_the_oldest(connect: Connect) -> None:
    clock = Clock()
    store = SessionStore(connect(), 3600, clock=clock, capacity=3)
    tokens = []
    for number in range(4):
        tokens.append(store.open(f"AK{number}")[0])
        clock.now += 1
    assert len(store) == 3 and store.get(tokens[0]) is None and all(store.get(token) for token in tokens[1:])
    tokens.append(store.open("AK3")[0])  # AK3 now holds the most (counting this one): its oldest goes
    assert len(store) == 3 and store.get(tokens[3]) is None
    assert store.get(tokens[1]) and store.get(tokens[2]) and store.get(tokens[4])
