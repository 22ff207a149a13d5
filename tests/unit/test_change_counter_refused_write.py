"""A write refused inside its transaction leaves the SQLite change counter even: readers keep the mapped counter.

Before, a refused write (rolled back) left the counter odd, and every process fell back to ``PRAGMA data_version``
(a read transaction per request) until the next successful write.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from kubekms.backend import KeyState
from kubekms.errors import NotFound
from kubekms.keystore import Keystore
from kubekms.keystore.sqlite import CHANGES_SUFFIX, DATABASE_FILE, ChangeCounter, SqliteDatabase


def _counter(directory: Path) -> int:
    counter = ChangeCounter(directory / (DATABASE_FILE + CHANGES_SUFFIX))
    try:
        return counter.value()
    finally:
        counter.close()


def test_a_refused_write_leaves_the_counter_even_and_larger(tmp_path: Path) -> None:
    store = Keystore(tmp_path / "ks", init=True)
    try:
        key = store.create_key("kept")
        before = _counter(tmp_path / "ks")
        with pytest.raises(NotFound):
            store.disable_key("00000000-0000-0000-0000-000000000000")  # refused inside its write transaction
        after = _counter(tmp_path / "ks")
        assert before % 2 == 0 and after % 2 == 0 and after > before
        assert store.describe_key(key.key_id).state is KeyState.ENABLED  # nothing else changed
    finally:
        store.close()
    database = SqliteDatabase(tmp_path / "ks" / DATABASE_FILE)
    try:
        assert database.data_version() == after  # the mapped counter, not the pragma's (negative) fallback
    finally:
        database.close()


def test_a_write_whose_rollback_failed_leaves_the_counter_odd(tmp_path: Path) -> None:
    database = SqliteDatabase(tmp_path / DATABASE_FILE)
    try:
        before = database.data_version()
        with pytest.raises(sqlite3.OperationalError), database.transaction():
            # ends the transaction early (a real fault: the transaction's own ROLLBACK then fails): the database's
            # state is not what the counter's writer knows, so readers must ask the database itself
            database.execute("ROLLBACK")
            raise RuntimeError("refused")
        assert _counter(tmp_path) % 2 == 1 and _counter(tmp_path) > before
        assert database.data_version() < 0  # the pragma's values, kept apart from the counter's
        with database.transaction():  # the next write settles it
            database.execute("INSERT INTO meta (name, value) VALUES ('x', 'y')")
        assert database.data_version() == _counter(tmp_path) > before
    finally:
        database.close()
