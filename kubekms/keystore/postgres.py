"""The shared engine: a project's keystore rows in one PostgreSQL schema, through a connection pool.

One pool per database URL serves every project of the process (a pool per project kept one
connection per project open in every replica: replicas x projects reached max_connections). A
connection belongs to no project: each checkout's first statement sets its ``search_path`` to the
project's schema (``set_config``, in the same round trip as the probe or the counter read, which
names its table with the schema), so every later statement of the checkout runs in that schema.

Several server processes may use the same database. Every write transaction first takes
the project's transaction-level advisory lock, so writers are serialised as SQLite's
``BEGIN IMMEDIATE`` serialises them: a read-check-write of a key's state, version or
deletion date, the CMK count and an alias check cannot interleave with another process's
(the alias primary key is the backstop). Each write bumps the ``changes`` counter, which
every call reads to drop the in-memory cache when another process committed. TLS to the
database is the URL's (``sslmode=verify-full&sslrootcert=...``).

At most one round trip per read call: the pool does not probe a connection on checkout; a
session takes its connection at its first statement or change check, and the counter read
there is the probe (a call answered from the keystore's cache makes none). A connection found broken there (the
database restarted, the session was terminated) goes back to the pool, which drops it, the
idle ones are checked (``ConnectionPool.check``) and the call starts again on another.

A write transaction holds the project's lock for every replica: a process that stops answering
inside one (frozen, or its host cut off without a FIN, which PostgreSQL would notice only by TCP
keepalive, two hours by default) would stall every replica's writes of the project, and with
them their reads, which wait behind their own process's writer. The database ends a session
idle inside a transaction for :data:`IDLE_IN_TRANSACTION_SECONDS`, which frees the lock; the
frozen write is rolled back and was never acknowledged.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg.rows import RowMaker
from psycopg_pool import ConnectionPool

from kubekms.keystore.pg_schema import MIGRATIONS, SCHEMA_VERSION
from kubekms.keystore.rootkey import KeystoreSetupError

POOL_SIZE = (1, 16)  # per database URL, shared by the projects of the process (a project uses one at a time)
# far above the longest pause of a write between its statements (RSA 4096 generation: up to ~2 s loaded)
IDLE_IN_TRANSACTION_SECONDS = 10
_CONNECT_TIMEOUT = 30.0
_MAX_IDENTIFIER = 63  # PostgreSQL truncates longer names silently
_Connection = psycopg.Connection[Any]
_T = TypeVar("_T")


class _Row(tuple[Any, ...]):
    """A row readable by position and by column name, like ``sqlite3.Row``."""

    _index: dict[str, int]

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._index[key])
        return tuple.__getitem__(self, key)


@functools.cache
def _row_type(names: tuple[str, ...]) -> type[_Row]:
    """One row class per column list (a class per statement would cost more than the statement)."""
    return type("Row", (_Row,), {"_index": {name: i for i, name in enumerate(names)}})


def _row_factory(cursor: psycopg.Cursor[Any]) -> RowMaker[_Row]:
    return _row_type(tuple(column.name for column in cursor.description or ()))


class _Result:
    """The rows of one statement, read before its connection went back to the pool."""

    def __init__(self, cursor: psycopg.Cursor[Any]) -> None:
        self.rowcount = cursor.rowcount
        self._rows: list[Any] = cursor.fetchall() if cursor.description is not None else []

    def fetchone(self) -> Any:
        return self._rows[0] if self._rows else None

    def fetchall(self) -> list[Any]:
        return list(self._rows)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)


def _check_connection(url: str) -> None:
    """Fail at once with libpq's reason (refused, TLS verification, auth), not after the pool's timeout."""
    try:
        psycopg.connect(url, connect_timeout=10).close()
    except psycopg.OperationalError as error:  # libpq's message names host and port, never the password
        raise KeystoreSetupError(f"cannot connect to the keystore database: {error}") from None


_IDLE_LIMIT = sql.SQL("SET idle_in_transaction_session_timeout = {}").format(
    sql.Literal(f"{IDLE_IN_TRANSACTION_SECONDS}s")
)
_pools: dict[str, tuple[ConnectionPool[_Connection], int]] = {}  # URL: the pool and how many keystores use it
_pools_lock = threading.Lock()


def _configure(connection: _Connection) -> None:
    connection.execute(_IDLE_LIMIT)
    connection.commit()


def _take_pool(url: str) -> ConnectionPool[_Connection]:
    """The process's pool of ``url``, opened by its first user."""
    with _pools_lock:
        pool, users = _pools.get(url, (None, 0))
        if pool is None:
            pool = ConnectionPool(
                url,
                min_size=POOL_SIZE[0],
                max_size=POOL_SIZE[1],
                kwargs={"autocommit": True, "row_factory": _row_factory},
                configure=_configure,  # no check= on checkout: see PostgresDatabase._checkout
                timeout=_CONNECT_TIMEOUT,
                open=False,
                name="kubekms-keystore",
            )
            pool.open(wait=True, timeout=_CONNECT_TIMEOUT)
        _pools[url] = (pool, users + 1)
        return pool


def _give_back_pool(url: str) -> None:
    """Closed when its last user is."""
    with _pools_lock:
        pool, users = _pools[url]
        if users > 1:
            _pools[url] = (pool, users - 1)
            return
        del _pools[url]
    pool.close()


def _portable(statement: str) -> str:
    """The keystore's SQL uses ``?`` placeholders (SQLite's); psycopg's are ``%s``."""
    return statement.replace("%", "%%").replace("?", "%s")


class PostgresDatabase:
    insertion_order = "seq"

    def __init__(self, url: str, *, schema: str) -> None:
        if not 1 <= len(schema.encode()) <= _MAX_IDENTIFIER or schema.lower().startswith("pg_"):
            raise KeystoreSetupError(
                f"project {schema!r} cannot name a PostgreSQL schema (at most 63 bytes, not starting with pg_)"
            )
        self._schema = schema
        self._url = url
        self._local = threading.local()
        # the checkout's first statement, for the statements after it; composed once (composing costs per call)
        path = sql.Literal(sql.Identifier(schema).as_string(None))
        self._enter = sql.SQL("SELECT set_config('search_path', {}, false)").format(path).as_string(None)
        self._enter_reading = (
            sql.SQL("SELECT set_config('search_path', {}, false), counter FROM {}.changes")
            .format(path, sql.Identifier(schema))
            .as_string(None)
        )
        _check_connection(url)
        self._pool = _take_pool(url)
        self._closed = False
        try:
            self._migrate()
        except BaseException:
            _give_back_pool(url)
            raise

    # --- schema --------------------------------------------------------------------------

    def _migrate(self) -> None:
        """Bring the project's schema to SCHEMA_VERSION; refuse one newer than this code."""
        with self._pool.connection() as connection, connection.transaction():
            # one migrator at a time across processes; the others then find it done
            connection.execute("SELECT pg_advisory_xact_lock(hashtext('kubekms-keystore-migrate'))")
            connection.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self._schema)))
            self._enter_schema(connection)
            connection.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            row = connection.execute("SELECT version FROM schema_version").fetchone()
            current = 0 if row is None else int(row[0])
            if current > SCHEMA_VERSION:
                raise RuntimeError(f"keystore schema version {current} is newer than this kubekms ({SCHEMA_VERSION})")
            for version in range(current, SCHEMA_VERSION):
                connection.execute(MIGRATIONS[version])
            if row is None:
                connection.execute("INSERT INTO schema_version (version) VALUES (%s)", (SCHEMA_VERSION,))
            else:
                connection.execute("UPDATE schema_version SET version = %s", (SCHEMA_VERSION,))

    # --- statements ----------------------------------------------------------------------

    def _enter_schema(self, connection: _Connection) -> None:
        connection.execute(self._enter)

    def _read_counter(self, connection: _Connection) -> int:
        """Enter the schema and read its change counter, in one round trip."""
        row = connection.execute(self._enter_reading).fetchone()
        if row is None:
            raise RuntimeError("the keystore's changes row is missing")
        return int(row[1])

    def _checkout(self, first: Callable[[_Connection], _T]) -> tuple[_Connection, _T]:
        """A pooled connection and the answer to its first statement, which proves it alive."""
        for attempt in range(2):
            connection = self._pool.getconn()
            try:
                return connection, first(connection)
            except BaseException as error:
                self._pool.putconn(connection)  # a broken one is discarded and replaced
                if attempt or not (isinstance(error, psycopg.OperationalError) and connection.broken):
                    raise
            self._pool.check()  # the others were likely cut too (a restart): replace them before the retry
        raise AssertionError("unreachable")

    @contextlib.contextmanager
    def _connection(self) -> Iterator[_Connection]:
        held: _Connection | None = getattr(self._local, "connection", None)
        if held is not None:  # inside this thread's session or write transaction
            yield held
            return
        if getattr(self._local, "session", False):  # the session's first statement: its connection from now on
            yield self._session_connection()
            return
        connection, _ = self._checkout(self._enter_schema)
        try:
            yield connection
        finally:
            self._pool.putconn(connection)

    def execute(self, statement: str, params: Sequence[object] = ()) -> _Result:
        with self._connection() as connection, connection.cursor() as cursor:
            cursor.execute(_portable(statement), params)
            return _Result(cursor)

    def executemany(self, statement: str, rows: Iterable[Sequence[object]]) -> None:
        """One statement per row (at most a key's 50 tags), not psycopg's pipelined ``executemany``: after a
        pipeline the session idles in its transaction without ``idle_in_transaction_session_timeout`` (measured),
        so a process frozen there would hold the project's write lock for ever."""
        rows, statement = list(rows), _portable(statement)
        if not rows:
            return
        with self._connection() as connection, connection.cursor() as cursor:
            for row in rows:
                cursor.execute(statement, row)

    @contextlib.contextmanager
    def _holding(self, connection: _Connection, counter: int | None) -> Iterator[None]:
        self._local.connection, self._local.counter = connection, counter
        try:
            yield
        finally:
            self._local.connection = self._local.counter = None
            self._pool.putconn(connection)

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """A connection is taken at the first statement or change check, not before: a call the
        keystore's cache answers whole needs no round trip."""
        if getattr(self._local, "connection", None) is not None or getattr(self._local, "session", False):
            yield
            return
        self._local.session = True
        try:
            yield
        finally:
            self._local.session = False
            connection: _Connection | None = getattr(self._local, "connection", None)
            if connection is not None:
                self._local.connection = self._local.counter = None
                self._pool.putconn(connection)

    def _session_connection(self) -> _Connection:
        """Check out the session's connection: the change check and the liveness probe in one round trip."""
        connection, counter = self._checkout(self._read_counter)
        self._local.connection, self._local.counter = connection, counter
        return connection

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        connection, _ = self._checkout(self._enter_schema)  # writes are rare: probe apart
        with self._holding(connection, None), connection.transaction():
            connection.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"kubekms-keystore/{self._schema}",))
            yield
            connection.execute("UPDATE changes SET counter = counter + 1")

    def scrub(self) -> None:
        """Nothing here: the dead row versions stay until (auto)VACUUM, and the database's WAL and backups are
        PostgreSQL's (see the keystore's notes on destruction)."""

    def data_version(self) -> int:
        """The counter read when this call's session began; in a write transaction, read under its lock."""
        counter: int | None = getattr(self._local, "counter", None)
        if counter is not None:
            return counter
        if getattr(self._local, "session", False) and getattr(self._local, "connection", None) is None:
            self._session_connection()
            counter = self._local.counter
            assert counter is not None
            return counter
        with self._connection() as connection:
            return self._read_counter(connection)

    def close(self) -> None:
        """Idempotent, as SQLite's: a second close must not give back another project's use of the pool."""
        if not self._closed:
            self._closed = True
            _give_back_pool(self._url)
