"""A destroyed key's sealed material does not stay in the SQLite file.

Destruction sets the version rows' ``sealed`` to NULL; SQLite leaves the old bytes of an updated row (and the
overflow pages of a long one, an RSA key's) in the file's free space unless ``secure_delete`` is on. Debian's
SQLite is built with it on, upstream's default (python.org, many wheels and distributions) is off: there the
sealed private key stayed in keystore.db after its pending window, readable with the root key beside it. The
keystore now asks for it itself; the test starts from a connection whose build default is off.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from kubekms.backend import KeyState
from kubekms.keystore import Keystore

_real_connect = sqlite3.connect


def _connect_with_secure_delete_off(*args: object, **kwargs: object) -> sqlite3.Connection:
    connection = _real_connect(*args, **kwargs)  # type: ignore[call-overload]
    connection.execute("PRAGMA secure_delete = OFF")  # as upstream SQLite's default build
    return connection  # type: ignore[no-any-return]


def _sealed(directory: Path, key_id: str) -> bytes:
    connection = _real_connect(directory / "keystore.db")
    try:
        (blob,) = connection.execute("SELECT sealed FROM key_versions WHERE key_id = ?", (key_id,)).fetchone()
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # the rows are in keystore.db itself
    finally:
        connection.close()
    return bytes(blob)


@pytest.mark.parametrize(("spec", "usage"), [("AES_256", "ENCRYPT_DECRYPT"), ("RSA_4096", "SIGN_VERIFY")])
def test_destroyed_material_leaves_no_bytes_in_the_database_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spec: str, usage: str
) -> None:
    monkeypatch.setattr(sqlite3, "connect", _connect_with_secure_delete_off)
    now = [1_800_000_000.0]
    clock: Callable[[], float] = lambda: now[0]  # noqa: E731
    directory = tmp_path / "ks"
    store = Keystore(directory, init=True, clock=clock)
    try:
        key_id = store.create_key("doomed", key_spec=spec, key_usage=usage).key_id
        store.create_key("neighbour")  # the page is not the destroyed row's alone
        blob = _sealed(directory, key_id)
        pieces = [blob[i : i + 32] for i in range(0, len(blob) - 32, 256)]
        assert any(piece in (directory / "keystore.db").read_bytes() for piece in pieces)  # the check can see it
        store.schedule_key_deletion(key_id, 7)
        now[0] += 8 * 86400
        assert store.run_due_work().destroyed == (key_id,)
        assert store.describe_key(key_id).state is KeyState.DESTROYED
    finally:
        store.close()  # the last connection checkpoints the WAL into keystore.db and removes it
    leftovers = [
        path.name for path in directory.iterdir() if path.is_file() and any(p in path.read_bytes() for p in pieces)
    ]
    assert leftovers == []


def test_destroyed_material_leaves_no_bytes_while_the_keystore_stays_open(tmp_path: Path) -> None:
    """A server keeps its keystore open for weeks: the destroy pass must not leave the sealed key in the WAL (its
    frames from the key's creation, reused only when the log grows that far again) nor in keystore.db until some
    later checkpoint."""
    now = [1_800_000_000.0]
    directory = tmp_path / "ks"
    store = Keystore(directory, init=True, clock=lambda: now[0])
    try:
        key_id = store.create_key("doomed", key_spec="RSA_4096", key_usage="SIGN_VERIFY").key_id
        blob = _sealed(directory, key_id)  # checkpointed: in keystore.db, and its frames stay in the WAL
        pieces = [blob[i : i + 32] for i in range(0, len(blob) - 32, 256)]
        store.create_key("later")  # a write after the checkpoint: the WAL starts over, its old frames stay

        def holding() -> list[str]:
            return [p.name for p in directory.iterdir() if p.is_file() and any(x in p.read_bytes() for x in pieces)]

        assert holding() != []  # the check can see it
        store.schedule_key_deletion(key_id, 7)
        now[0] += 8 * 86400
        assert store.run_due_work().destroyed == (key_id,)
        assert holding() == []
        assert store.describe_key("later").state is KeyState.ENABLED  # the store goes on
    finally:
        store.close()


def test_a_reader_in_an_old_snapshot_does_not_hold_the_destroy_pass(tmp_path: Path) -> None:
    """The log's truncation waits for other processes' readers: for a short while, not the 30 s a write waits (the
    pass holds the keystore's lock, every request of the process waits behind it). The destruction is committed
    whatever the truncation did."""
    now = [1_800_000_000.0]
    directory = tmp_path / "ks"
    store = Keystore(directory, init=True, clock=lambda: now[0])
    reader = _real_connect(directory / "keystore.db", isolation_level=None)
    try:
        key_id = store.create_key("doomed").key_id
        store.schedule_key_deletion(key_id, 7)
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM keys").fetchone()  # another process's read, in its snapshot
        now[0] += 8 * 86400
        started = time.monotonic()
        assert store.run_due_work().destroyed == (key_id,)
        assert time.monotonic() - started < 15.0  # 30 s and more without a bound of its own
        assert store.describe_key(key_id).state is KeyState.DESTROYED
    finally:
        reader.close()
        store.close()
