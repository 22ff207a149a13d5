"""Where the console keeps sessions and failed sign-ins, shared by every process that serves it.

Worker processes of one server share ``state_dir``/console-sessions.db (SQLite). Replicas on a
shared PostgreSQL database (each with a state dir of its own) share its ``kubekms_console``
schema instead. The stores write portable SQL (``?`` placeholders, text, double precision,
``RETURNING``); :class:`ConsoleDatabase` runs it on either engine.

SQLite: one connection per process guarded by a lock (the console calls from worker threads),
the file created 0600, WAL (readers never wait for a writer) with a small log (the chart's state
dir on PostgreSQL is a few MiB of memory), every commit synced (``synchronous = FULL``: a
sign-out survives a power cut). Without a path: the memory of one process. PostgreSQL: a small
connection pool, autocommit, the schema created once under an advisory lock.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from kubekms.private_files import create_private_database

BUSY_SECONDS = 10.0
WAL_PAGES = 64  # checkpoint the write-ahead log at this many pages (SQLite's default: 1000)
WAL_BYTES = 512 * 1024  # and cut it back to this size after a checkpoint
PG_SCHEMA = "kubekms_console"
PG_POOL_SIZE = (1, 4)


class Statements(Protocol):
    def execute(self, statement: str, params: Sequence[object] = ()) -> Any: ...


class ConsoleDatabase(Protocol):
    def create(self, schema: str) -> None:
        """Create tables and indexes (``IF NOT EXISTS``: every process runs it)."""

    def reading(self) -> contextlib.AbstractContextManager[Statements]:
        """Statements in autocommit mode: each its own transaction."""

    def transaction(self) -> contextlib.AbstractContextManager[Statements]:
        """Statements in one write transaction, rolled back on any error."""


class SqliteConsoleDatabase:
    def __init__(self, path: Path | None) -> None:
        if path is not None:
            create_private_database(path)  # another worker may have made it first
        self._lock = threading.Lock()
        self._connection = sqlite3.connect(
            ":memory:" if path is None else path, isolation_level=None, check_same_thread=False, timeout=BUSY_SECONDS
        )
        for pragma in (
            f"busy_timeout = {int(BUSY_SECONDS * 1000)}",
            "journal_mode = WAL",
            "synchronous = FULL",
            f"wal_autocheckpoint = {WAL_PAGES}",
            f"journal_size_limit = {WAL_BYTES}",
        ):
            self._connection.execute(f"PRAGMA {pragma}")

    def create(self, schema: str) -> None:
        with self._lock:
            self._connection.executescript(schema)

    @contextlib.contextmanager
    def reading(self) -> Iterator[Statements]:
        with self._lock:
            yield self._connection

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Statements]:
        with self._lock:
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                yield self._connection
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
            self._connection.execute("COMMIT")


class _PgStatements:
    def __init__(self, connection: Any) -> None:
        self._connection = connection

    def execute(self, statement: str, params: Sequence[object] = ()) -> Any:
        return self._connection.execute(statement.replace("?", "%s"), params)


class PostgresConsoleDatabase:
    def __init__(self, url: str) -> None:
        import psycopg  # only when the server has a database
        from psycopg import sql
        from psycopg_pool import ConnectionPool

        self._create_schema = sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(PG_SCHEMA))
        search_path = sql.SQL("SET search_path TO {}").format(sql.Identifier(PG_SCHEMA))

        def configure(connection: psycopg.Connection[Any]) -> None:
            connection.execute(search_path)

        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            url,
            min_size=PG_POOL_SIZE[0],
            max_size=PG_POOL_SIZE[1],
            kwargs={"autocommit": True},
            configure=configure,
            check=ConnectionPool.check_connection,
            timeout=BUSY_SECONDS,
            open=False,
            name="kubekms-console",
        )
        self._pool.open(wait=True, timeout=BUSY_SECONDS)

    def create(self, schema: str) -> None:
        with self._pool.connection() as connection, connection.transaction():
            # one creator at a time: concurrent CREATE ... IF NOT EXISTS can collide in PostgreSQL
            connection.execute("SELECT pg_advisory_xact_lock(hashtext('kubekms-console-schema'))")
            connection.execute(self._create_schema)
            for statement in filter(str.strip, schema.split(";")):
                connection.execute(statement)

    @contextlib.contextmanager
    def reading(self) -> Iterator[Statements]:
        with self._pool.connection() as connection:
            yield _PgStatements(connection)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Statements]:
        with self._pool.connection() as connection, connection.transaction():
            # one writer at a time, as SQLite's BEGIN IMMEDIATE: a read-then-write (the sign-in throttle) is atomic
            connection.execute("SELECT pg_advisory_xact_lock(hashtext('kubekms-console-write'))")
            yield _PgStatements(connection)


def open_console_database(path: Path | None, database_url: str | None = None) -> ConsoleDatabase:
    """The shared database when the server has one, else the state dir's file (None: memory)."""
    if database_url is not None:
        return PostgresConsoleDatabase(database_url)
    return SqliteConsoleDatabase(path)
