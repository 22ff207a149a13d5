"""The console's SQLite file in the state dir: sessions and failed sign-ins, shared by every worker process.

One connection per process, guarded by a lock (the console calls it from worker threads);
the file is created 0600, in WAL mode so readers never wait for a writer, and every commit
is synced (``synchronous = FULL``: a sign-out survives a power cut). Without a path the
database is in the memory of one process (an application built without a state dir).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

BUSY_SECONDS = 10.0
WAL_PAGES = 64  # checkpoint the write-ahead log at this many pages (SQLite's default: 1000)
WAL_BYTES = 512 * 1024  # and cut it back to this size after a checkpoint


class ConsoleDatabase:
    def __init__(self, path: Path | None) -> None:
        if path is not None and not path.exists():
            with contextlib.suppress(FileExistsError):  # another worker made it first
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        self._lock = threading.Lock()
        self._connection = sqlite3.connect(
            ":memory:" if path is None else path, isolation_level=None, check_same_thread=False, timeout=BUSY_SECONDS
        )
        self._connection.execute(f"PRAGMA busy_timeout = {int(BUSY_SECONDS * 1000)}")
        self._connection.execute("PRAGMA journal_mode = WAL")
        self._connection.execute("PRAGMA synchronous = FULL")
        # a small write-ahead log: the chart's state dir on PostgreSQL is a few MiB of memory
        self._connection.execute(f"PRAGMA wal_autocheckpoint = {WAL_PAGES}")
        self._connection.execute(f"PRAGMA journal_size_limit = {WAL_BYTES}")

    def create(self, schema: str) -> None:
        """Create tables and indexes (``IF NOT EXISTS``: every worker runs it)."""
        with self._lock:
            self._connection.executescript(schema)

    @contextlib.contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """Statements in autocommit mode: each its own transaction, no write lock held between them."""
        with self._lock:
            yield self._connection

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Statements in one write transaction (``BEGIN IMMEDIATE``), rolled back on any error."""
        with self._lock:
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                yield self._connection
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
            self._connection.execute("COMMIT")
