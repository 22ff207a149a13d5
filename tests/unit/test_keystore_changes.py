"""The SQLite keystore's change counter: every process sees a commit acknowledged elsewhere, a killed writer too."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubekms.backend import KeyState
from kubekms.errors import Disabled, NotFound
from kubekms.keystore import Keystore
from kubekms.keystore.request_scope import one_look_per_request
from kubekms.keystore.sqlite import CHANGES_SUFFIX, DATABASE_FILE, ChangeCounter, SqliteDatabase

# a writer that disables the key (state 3), waits for a line before its COMMIT, then is killed before it makes
# the counter even again
_KILLED_WRITER = """
import sqlite3, sys
from collections.abc import Iterator
from pathlib import Path
from kubekms.keystore.sqlite import ChangeCounter
database, key_id = Path(sys.argv[1]), sys.argv[2]
changes = ChangeCounter(database.with_name(database.name + "-changes"))
connection = sqlite3.connect(database, isolation_level=None, timeout=30.0)
with changes.writing():
    connection.execute("BEGIN IMMEDIATE")
    connection.execute("UPDATE keys SET state = '3' WHERE key_id = ?", (key_id,))
    print("writing", flush=True)
    sys.stdin.readline()
    connection.execute("COMMIT")
    print("committed", flush=True)
    sys.stdin.read()  # killed here: after its COMMIT, before the counter is even again
"""


def _counter(directory: Path) -> int:
    counter = ChangeCounter(directory / (DATABASE_FILE + CHANGES_SUFFIX))
    try:
        return counter.value()
    finally:
        counter.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Keystore]:
    keystore = Keystore(tmp_path / "ks", init=True)
    yield keystore
    keystore.close()


def test_every_write_leaves_the_counter_even_and_larger(store: Keystore, tmp_path: Path) -> None:
    before = _counter(tmp_path / "ks")
    key = store.create_key("counted")
    after_create = _counter(tmp_path / "ks")
    store.disable_key(key.key_id)
    assert before % 2 == after_create % 2 == _counter(tmp_path / "ks") % 2 == 0
    assert before < after_create < _counter(tmp_path / "ks")
    assert oct((tmp_path / "ks" / (DATABASE_FILE + CHANGES_SUFFIX)).stat().st_mode & 0o777) == "0o600"


def test_a_writer_killed_after_its_commit_is_seen_and_the_next_write_settles_the_counter(
    store: Keystore, tmp_path: Path
) -> None:
    key = store.create_key("killed-writer")
    with one_look_per_request():
        store.create_data_key(key.key_id)  # the key is cached as enabled
    writer = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, str(tmp_path / "ks" / DATABASE_FILE), key.key_id],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert writer.stdout is not None and writer.stdin is not None
        assert writer.stdout.readline().strip() == "writing"
        with one_look_per_request():  # a request while the write runs: its rows as they were, under an odd counter
            store.create_data_key(key.key_id)
        writer.stdin.write("commit\n")
        writer.stdin.flush()
        assert writer.stdout.readline().strip() == "committed"
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(timeout=30)
        assert writer.stdin is not None
        writer.stdin.close()
    assert _counter(tmp_path / "ks") % 2 == 1  # left odd: readers ask the database itself
    for _ in range(2):  # every request while it stays odd, not only the first
        with one_look_per_request(), pytest.raises(Disabled):
            store.create_data_key(key.key_id)
    settled = _counter(tmp_path / "ks")
    store.enable_key(key.key_id)  # the next write (the flock the killed writer held was released by the kernel)
    assert _counter(tmp_path / "ks") % 2 == 0 and _counter(tmp_path / "ks") > settled
    with one_look_per_request():
        assert store.describe_key(key.key_id).state is KeyState.ENABLED
        store.create_data_key(key.key_id)


def test_a_counter_file_another_process_wrote_is_never_shrunk(tmp_path: Path) -> None:
    path = tmp_path / "changes"
    first = ChangeCounter(path)
    with first.writing():
        pass
    second = ChangeCounter(path)  # opened later: the value stays
    assert second.value() == first.value() == 2
    first.close()
    second.close()


def test_a_closed_keystore_refuses_reads_as_a_closed_database_does(tmp_path: Path) -> None:
    store = Keystore(tmp_path / "closed", init=True)
    store.close()
    with pytest.raises(sqlite3.ProgrammingError):
        store.instance_count()


def test_a_closed_keystore_refuses_writes_and_leaves_the_descriptors_of_later_ones_alone(tmp_path: Path) -> None:
    closed = Keystore(tmp_path / "closed", init=True)
    closed.close()
    later = Keystore(tmp_path / "later", init=True)  # may be given the closed keystore's descriptor numbers
    with pytest.raises(sqlite3.ProgrammingError):
        closed.create_key("after-close")
    closed.close()  # a second close closes nothing of the later keystore's
    key = later.create_key("still-writable")
    with one_look_per_request():
        assert later.describe_key(key.key_id).state is KeyState.ENABLED
    later.close()


# A write refused inside its transaction leaves the counter even: readers keep the mapped counter (before, a
# refused write left it odd, and every process fell back to PRAGMA data_version until the next successful write).
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
