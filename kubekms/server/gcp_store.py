"""What Cloud KMS has and the keystore has not: key rings, crypto keys and the map of their versions.

One SQLite file (``gcp.db``) beside the project's keystore. A crypto key version *is* a keystore
key (its material, its state, its destruction after the pending window all live there), with
the alias ``gcp/<location>/<ring>/<key>/<version>``; this file only records which keystore key
is which version, the crypto key's primary version, labels, rotation schedule and
destroy-scheduled duration, and the key rings. Synchronous and thread-safe: the servicer reads on
the event loop and writes (which fsync) in a worker thread, under one asyncio lock per project.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from kubekms.errors import AlreadyExists, NotFound

DATABASE_FILE = "gcp.db"
SYMMETRIC = "GOOGLE_SYMMETRIC_ENCRYPTION"
# columns added since the first schema: (table, column, definition), added to a database that lacks them
ADDED_COLUMNS = (("crypto_keys", "algorithm", f"TEXT NOT NULL DEFAULT '{SYMMETRIC}'"),)
SCHEMA = """
CREATE TABLE IF NOT EXISTS key_rings (
    location TEXT NOT NULL, ring TEXT NOT NULL, created_at REAL NOT NULL, PRIMARY KEY (location, ring)
);
CREATE TABLE IF NOT EXISTS crypto_keys (
    location TEXT NOT NULL, ring TEXT NOT NULL, key TEXT NOT NULL,
    created_at REAL NOT NULL,
    labels TEXT NOT NULL,
    rotation_period INTEGER,
    next_rotation REAL,
    destroy_days INTEGER NOT NULL,
    primary_version INTEGER,
    algorithm TEXT NOT NULL DEFAULT 'GOOGLE_SYMMETRIC_ENCRYPTION',
    PRIMARY KEY (location, ring, key)
);
CREATE TABLE IF NOT EXISTS versions (
    location TEXT NOT NULL, ring TEXT NOT NULL, key TEXT NOT NULL, version INTEGER NOT NULL,
    keystore_key_id TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL,
    PRIMARY KEY (location, ring, key, version)
);
CREATE TABLE IF NOT EXISTS version_claims (
    location TEXT NOT NULL, ring TEXT NOT NULL, key TEXT NOT NULL, version INTEGER NOT NULL,
    claimed_at REAL NOT NULL,
    PRIMARY KEY (location, ring, key, version)
)
"""


@dataclass(frozen=True)
class KeyRingRecord:
    location: str
    ring: str
    created_at: float


@dataclass(frozen=True)
class CryptoKeyRecord:
    location: str
    ring: str
    key: str
    created_at: float
    destroy_days: int
    labels: Mapping[str, str] = field(default_factory=dict)
    rotation_period: int | None = None  # seconds
    next_rotation: float | None = None  # epoch seconds
    primary_version: int | None = None
    algorithm: str = SYMMETRIC  # its versions' CryptoKeyVersionAlgorithm name (the purpose follows from it)


@dataclass(frozen=True)
class VersionRecord:
    location: str
    ring: str
    key: str
    version: int
    keystore_key_id: str
    created_at: float


def _crypto_key(row: sqlite3.Row) -> CryptoKeyRecord:
    return CryptoKeyRecord(
        location=row["location"],
        ring=row["ring"],
        key=row["key"],
        created_at=row["created_at"],
        destroy_days=row["destroy_days"],
        labels=json.loads(row["labels"]),
        rotation_period=row["rotation_period"],
        next_rotation=row["next_rotation"],
        primary_version=row["primary_version"],
        algorithm=row["algorithm"],
    )


def _version(row: sqlite3.Row) -> VersionRecord:
    return VersionRecord(row["location"], row["ring"], row["key"], row["version"], row["keystore_key_id"],
                         row["created_at"])  # fmt: skip


class GcpStore:
    def __init__(self, directory: Path) -> None:
        path = directory / DATABASE_FILE
        if not path.exists():
            with contextlib.suppress(FileExistsError):
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = FULL")
        self._lock = threading.RLock()
        with self._write() as db:
            for statement in SCHEMA.split(";"):
                db.execute(statement)
            for table, column, definition in ADDED_COLUMNS:
                if column not in {row["name"] for row in db.execute(f"PRAGMA table_info({table})")}:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _page(self, sql: str, params: tuple[object, ...], offset: int, limit: int) -> tuple[list[sqlite3.Row], int]:
        with self._lock:
            (total,) = self._db.execute(f"SELECT COUNT(*) FROM ({sql})", params).fetchone()  # noqa: S608
            rows = self._db.execute(f"{sql} LIMIT ? OFFSET ?", (*params, limit, offset)).fetchall()
        return rows, int(total)

    # --- key rings ---------------------------------------------------------------------

    def create_key_ring(self, location: str, ring: str, now: float) -> KeyRingRecord:
        with self._write() as db:
            try:
                db.execute("INSERT INTO key_rings VALUES (?, ?, ?)", (location, ring, now))
            except sqlite3.IntegrityError:
                raise AlreadyExists(f"KeyRing {ring} already exists in location {location}") from None
        return KeyRingRecord(location, ring, now)

    def key_ring(self, location: str, ring: str) -> KeyRingRecord:
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM key_rings WHERE location = ? AND ring = ?", (location, ring)
            ).fetchone()
        if row is None:
            raise NotFound(f"KeyRing {ring} not found in location {location}")
        return KeyRingRecord(row["location"], row["ring"], row["created_at"])

    def key_rings(self, location: str, offset: int, limit: int) -> tuple[list[KeyRingRecord], int]:
        rows, total = self._page("SELECT * FROM key_rings WHERE location = ? ORDER BY ring", (location,), offset, limit)
        return [KeyRingRecord(r["location"], r["ring"], r["created_at"]) for r in rows], total

    # --- crypto keys -------------------------------------------------------------------

    def create_crypto_key(self, record: CryptoKeyRecord, first: VersionRecord | None, *, primary: bool = True) -> None:
        """The crypto key and its first version (its primary unless ``primary`` is False) in one transaction."""
        primary_version = first.version if first is not None and primary else None
        with self._write() as db:
            try:
                db.execute(
                    "INSERT INTO crypto_keys (location, ring, key, created_at, labels, rotation_period, next_rotation,"
                    " destroy_days, primary_version, algorithm) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (record.location, record.ring, record.key, record.created_at, json.dumps(dict(record.labels)),
                     record.rotation_period, record.next_rotation, record.destroy_days, primary_version,
                     record.algorithm),
                )  # fmt: skip
            except sqlite3.IntegrityError:
                raise AlreadyExists(f"CryptoKey {record.key} already exists in KeyRing {record.ring}") from None
            if first is not None:
                self._insert_version(db, first)

    @staticmethod
    def _insert_version(db: sqlite3.Connection, record: VersionRecord) -> None:
        db.execute(
            "INSERT INTO versions VALUES (?, ?, ?, ?, ?, ?)",
            (record.location, record.ring, record.key, record.version, record.keystore_key_id, record.created_at),
        )
        db.execute(
            "DELETE FROM version_claims WHERE location = ? AND ring = ? AND key = ? AND version = ?",
            (record.location, record.ring, record.key, record.version),
        )

    # --- claims: which keystore keys this API may have made without recording them (a crash in between) ----

    def claim_version(self, location: str, ring: str, key: str, version: int, now: float) -> bool:
        """Note that a keystore key is about to be made for this version; True if an earlier attempt had noted it.

        Only then may a keystore key already holding the version's alias be adopted: otherwise anyone
        allowed to create an alias could plant a key of theirs as a future version of someone's crypto key.
        """
        with self._write() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO version_claims VALUES (?, ?, ?, ?, ?)", (location, ring, key, version, now)
            )
        return cursor.rowcount == 0

    def release_version(self, location: str, ring: str, key: str, version: int) -> None:
        """The attempt made no keystore key: forget its claim."""
        with self._write() as db:
            db.execute(
                "DELETE FROM version_claims WHERE location = ? AND ring = ? AND key = ? AND version = ?",
                (location, ring, key, version),
            )

    def crypto_key(self, location: str, ring: str, key: str) -> CryptoKeyRecord:
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM crypto_keys WHERE location = ? AND ring = ? AND key = ?", (location, ring, key)
            ).fetchone()
        if row is None:
            raise NotFound(f"CryptoKey {key} not found in KeyRing {ring}")
        return _crypto_key(row)

    def crypto_keys(self, location: str, ring: str, offset: int, limit: int) -> tuple[list[CryptoKeyRecord], int]:
        rows, total = self._page(
            "SELECT * FROM crypto_keys WHERE location = ? AND ring = ? ORDER BY key", (location, ring), offset, limit
        )
        return [_crypto_key(row) for row in rows], total

    def due_for_rotation(self, now: float) -> list[CryptoKeyRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM crypto_keys WHERE next_rotation IS NOT NULL AND next_rotation <= ?", (now,)
            ).fetchall()
        return [_crypto_key(row) for row in rows]

    def update_crypto_key(self, record: CryptoKeyRecord) -> None:
        """Write the mutable fields (labels, rotation, primary) of an existing crypto key."""
        with self._write() as db:
            db.execute(
                "UPDATE crypto_keys SET labels = ?, rotation_period = ?, next_rotation = ?, primary_version = ?"
                " WHERE location = ? AND ring = ? AND key = ?",
                (json.dumps(dict(record.labels)), record.rotation_period, record.next_rotation,
                 record.primary_version, record.location, record.ring, record.key),
            )  # fmt: skip

    # --- versions ----------------------------------------------------------------------

    def next_version(self, location: str, ring: str, key: str) -> int:
        with self._lock:
            (highest,) = self._db.execute(
                "SELECT MAX(version) FROM versions WHERE location = ? AND ring = ? AND key = ?", (location, ring, key)
            ).fetchone()
        return int(highest or 0) + 1

    def add_version(self, record: VersionRecord, *, make_primary: bool) -> None:
        with self._write() as db:
            self._insert_version(db, record)
            if make_primary:
                db.execute(
                    "UPDATE crypto_keys SET primary_version = ? WHERE location = ? AND ring = ? AND key = ?",
                    (record.version, record.location, record.ring, record.key),
                )

    def version(self, location: str, ring: str, key: str, version: int) -> VersionRecord:
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM versions WHERE location = ? AND ring = ? AND key = ? AND version = ?",
                (location, ring, key, version),
            ).fetchone()
        if row is None:
            raise NotFound(f"CryptoKeyVersion {version} not found in CryptoKey {key}")
        return _version(row)

    def version_of_keystore_key(self, keystore_key_id: str) -> VersionRecord | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM versions WHERE keystore_key_id = ?", (keystore_key_id,)).fetchone()
        return None if row is None else _version(row)

    def versions(self, location: str, ring: str, key: str, offset: int, limit: int) -> tuple[list[VersionRecord], int]:
        rows, total = self._page(
            "SELECT * FROM versions WHERE location = ? AND ring = ? AND key = ? ORDER BY version",
            (location, ring, key),
            offset,
            limit,
        )
        return [_version(row) for row in rows], total
