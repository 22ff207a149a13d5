"""The embedded engine: one SQLite file in WAL mode, writes serialised by ``BEGIN IMMEDIATE``.

Other processes' commits are seen through a change counter beside the database
(``keystore.db-changes``, 8 bytes mapped into every process that opens the keystore) rather than
``PRAGMA data_version``: that pragma starts a read transaction (WAL index header, shared-memory
locks by ``fcntl``) and was the costliest step of a request served from the keystore's cache
(3 µs); reading the mapped counter costs a tenth of it.

The counter is a sequence lock: a writer, holding an exclusive ``flock`` on the counter's file
for its whole transaction, makes it odd before its first statement and even (and larger) after
its COMMIT, before the write call returns. So a commit acknowledged to its caller has always
made the counter even and larger than any value a reader could have cached rows under. A write
refused inside its transaction (rolled back) makes it even and larger too: nothing is under way
any more. While it is odd (a write under way, a writer killed between its two steps, or a COMMIT
or ROLLBACK that failed) :meth:`data_version` falls back to the pragma, whose values are kept
apart from the counter's (negative), so a reader keeps no cache across that window; the next
write makes it even again. Every writer of
the file must be this engine (the keystore's processes are): a writer that does not bump the
counter would not be seen by the others' caches.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import sqlite3
import struct
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from kubekms.keystore.schema import migrate
from kubekms.private_files import create_private_database, open_private

DATABASE_FILE = "keystore.db"
CHANGES_SUFFIX = "-changes"
_ONE_CONNECTION_ALREADY = contextlib.nullcontext()  # a session: every statement is on the one connection
_COUNTER = struct.Struct("<Q")
_BUSY_WAIT_MS = 30000
_SCRUB_WAIT_MS = 2000


class WriteOutcome:
    """Whether a write transaction left the database in a known state (committed, or rolled back whole)."""

    __slots__ = ("settled",)

    def __init__(self) -> None:
        self.settled = False

    def undone(self) -> None:
        """The transaction was rolled back (or never began): the database is as it was."""
        self.settled = True


class ChangeCounter:
    """The keystore's change counter, shared by every process through a mapped file (see the module)."""

    def __init__(self, path: Path) -> None:
        self._fd = open_private(path, os.O_RDWR | os.O_CREAT)
        if os.fstat(self._fd).st_size < _COUNTER.size:  # never shrinks a counter another process wrote
            os.ftruncate(self._fd, _COUNTER.size)
        self._map = mmap.mmap(self._fd, _COUNTER.size)

    def value(self) -> int:
        (value,) = _COUNTER.unpack_from(self._map)
        return int(value)

    def _store(self, value: int) -> None:
        _COUNTER.pack_into(self._map, 0, value)

    @contextlib.contextmanager
    def writing(self) -> Iterator[WriteOutcome]:
        """Around one write transaction: odd while it runs, even and larger once it committed, or once an exception
        left the database as it was (the caller says so: :meth:`WriteOutcome.undone`); any other exception leaves it
        odd (readers then ask the database)."""
        if self._fd < 0:  # closed: refused as any statement on a closed database is
            raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            value = self.value()
            self._store(value + 1 if value % 2 == 0 else value + 2)  # odd, larger: a killed writer left it odd
            outcome = WriteOutcome()
            try:
                yield outcome
                outcome.settled = True
            finally:
                if outcome.settled:
                    self._store(self.value() + 1)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Idempotent: the descriptor's number may belong to a file opened since (another keystore's counter)."""
        self._map.close()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class SqliteDatabase:
    insertion_order = "rowid"

    def __init__(self, path: Path) -> None:
        create_private_database(path)
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
        connection.row_factory = sqlite3.Row
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = FULL")
        connection.execute("PRAGMA foreign_keys = ON")
        # a destroyed key's sealed rows (an RSA key's overflow pages) are overwritten, not left in free pages:
        # upstream SQLite's default build leaves them (Debian's turns this on at build time)
        connection.execute("PRAGMA secure_delete = ON")
        connection.execute(f"PRAGMA busy_timeout = {_BUSY_WAIT_MS}")
        migrate(connection)
        self._connection = connection
        self._changes = ChangeCounter(path.with_name(path.name + CHANGES_SUFFIX))

    def execute(self, sql: str, params: Sequence[object] = ()) -> sqlite3.Cursor:
        return self._connection.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        self._connection.executemany(sql, rows)

    def session(self) -> contextlib.nullcontext[None]:
        return _ONE_CONNECTION_ALREADY

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        with self._changes.writing() as outcome:
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._connection.execute("ROLLBACK")  # when this raises too, the counter stays odd
                outcome.undone()
                raise
            self._connection.execute("COMMIT")

    def scrub(self) -> None:
        """Copy the log into keystore.db (whose freed cells secure_delete zeroed) and cut it to nothing: its frames
        from before a destruction would otherwise stay until the log grows that far again. Best effort: a reader
        of another process still in an old snapshot keeps it (busy), and the next destruction tries again."""
        # it waits for other processes' readers to leave old snapshots: briefly, the keystore's lock is held
        self._connection.execute(f"PRAGMA busy_timeout = {_SCRUB_WAIT_MS}")
        try:
            with contextlib.suppress(sqlite3.OperationalError):  # busy past the wait: the write is committed anyway
                self._connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        finally:
            self._connection.execute(f"PRAGMA busy_timeout = {_BUSY_WAIT_MS}")

    def data_version(self) -> int:
        try:
            counter = self._changes.value()
        except ValueError:  # closed: the pragma raises what any statement on a closed database raises
            counter = 1
        if counter % 2 == 0:
            return counter
        (version,) = self._connection.execute("PRAGMA data_version").fetchone()  # a write under way, or killed
        return -1 - int(version)

    def close(self) -> None:
        self._connection.close()
        self._changes.close()
