"""The keystore engine: customer master keys with sealed, versioned material in a database.

One :class:`Keystore` is one project's store: a directory holding ``root.key`` and, by
default, the SQLite file ``keystore.db`` (:mod:`kubekms.keystore.sqlite`); with a
``database_url`` the rows live in PostgreSQL instead (:mod:`kubekms.keystore.postgres`)
and the root key stays in the directory. It is synchronous and thread-safe;
:mod:`kubekms.providers.local` adapts it to the async backend protocol. Several processes
may open the same store: the engine serialises write transactions and the in-memory cache
is dropped whenever another connection committed (the engine's ``data_version``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import secrets
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kubekms import ciphertext
from kubekms.backend import (
    DATA_KEY_PAIR_SPECS,
    ECC_KEY_SPECS,
    HMAC_KEY_SPECS,
    ORIGIN_EXTERNAL,
    ORIGIN_KMS,
    RSA_KEY_SPECS,
    SYMMETRIC_KEY_SPEC,
    DataKey,
    DataKeyPair,
    Grant,
    GrantTerms,
    ImportParameters,
    KeyMetadata,
    KeyOutput,
    KeyPage,
    KeyState,
    Quota,
    RotationStatus,
)
from kubekms.errors import (
    AlreadyExists,
    Disabled,
    InvalidArgument,
    InvalidCiphertext,
    InvalidState,
    LimitExceeded,
    NotFound,
    Reason,
)
from kubekms.keystore import asymmetric, request_scope, rules
from kubekms.keystore.database import Database, Row
from kubekms.keystore.rootkey import (
    KeystoreSetupError,
    RootKeyNotInstalled,
    Sealer,
    key_version_context,
    load_root_key,
)
from kubekms.keystore.sqlite import DATABASE_FILE, SqliteDatabase
from kubekms.naming import is_key_id

ROOT_KEY_FILE = "root.key"
__all__ = ["DATABASE_FILE", "ROOT_KEY_FILE", "DueWork", "Keystore"]
_ROOT_CHECK = b"kubekms keystore root key check"
_DAY = 86400.0
_MATERIAL_BYTES = 32  # imported material: AES-256 keys only
_DIGEST_PREFIX = b"kubekms imported key material digest\0"  # a re-import must bring the same material


def _import_context(key_id: str, token_hash: str) -> str:
    return f"kubekms/import-wrapping-key/{key_id}/{token_hash}"


def _to_datetime(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


@dataclass(frozen=True)
class KeyVersion:
    """One version of a key's material: when it was made (or became current), whether by an on-demand rotation, and
    whether it is imported material waiting for the rotation that makes it current (AWS's PENDING_ROTATION)."""

    version: int
    created_at: datetime
    on_demand: bool
    pending: bool = False


@dataclass(frozen=True)
class _KeyRecord:
    key_id: str
    alias: str
    description: str
    key_spec: str
    key_usage: str
    origin: str
    state: KeyState
    created_at: float
    current_version: int
    rotation_enabled: bool
    rotation_interval_days: int
    last_rotation_at: float | None
    number_of_rotations: int
    deletion_date: float | None
    material_expires_at: float | None
    region: str

    @classmethod
    def from_row(cls, row: Row) -> _KeyRecord:
        return cls(
            key_id=row["key_id"],
            alias=row["alias"],
            description=row["description"],
            key_spec=row["key_spec"],
            key_usage=row["key_usage"],
            origin=row["origin"],
            state=KeyState(row["state"]),
            created_at=row["created_at"],
            current_version=row["current_version"],
            rotation_enabled=bool(row["rotation_enabled"]),
            rotation_interval_days=row["rotation_interval_days"],
            last_rotation_at=row["last_rotation_at"],
            number_of_rotations=row["number_of_rotations"],
            deletion_date=row["deletion_date"],
            material_expires_at=row["material_expires_at"],
            region=row["region"],
        )

    def next_rotation_at(self) -> float | None:
        if not self.rotation_enabled:
            return None
        return (self.last_rotation_at or self.created_at) + self.rotation_interval_days * _DAY


def _terms_json(terms: GrantTerms) -> str:
    return json.dumps(dataclasses.asdict(terms), sort_keys=True)


def _grant(row: Row) -> Grant:
    fields = json.loads(row["terms"])
    # a grant stored before GrantTerms had permissions has none (every call of its operations)
    terms = GrantTerms(**{**fields, "operations": tuple(fields["operations"]),
                          "permissions": tuple(fields.get("permissions", ()))})  # fmt: skip
    return Grant(row["grant_id"], row["key_id"], datetime.fromtimestamp(row["created_at"], UTC), terms, row["token"])


@dataclass(frozen=True)
class DueWork:
    """What one maintenance pass did."""

    rotated: tuple[str, ...]
    destroyed: tuple[str, ...]


_NO_SESSION = contextlib.nullcontext()


class _Reading:
    """:meth:`Keystore._read` as a plain context manager (a generator-based one cost 1 µs per call, 3 per request)."""

    __slots__ = ("_session", "_store")

    def __init__(self, store: Keystore) -> None:
        self._store = store
        self._session: contextlib.AbstractContextManager[None] = _NO_SESSION

    def __enter__(self) -> None:
        store = self._store
        store._lock.acquire()
        try:
            self._session = store._db.session()
            self._session.__enter__()
        except BaseException:
            store._lock.release()
            raise
        try:
            if not request_scope.looked(store):
                store._refresh_cache()
                request_scope.mark_looked(store)
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        try:
            self._session.__exit__(kind, error, trace)
        finally:
            self._store._lock.release()


def _not_installed(directory: Path) -> RootKeyNotInstalled:
    return RootKeyNotInstalled(
        f"project {directory.name!r} is not served by this server: its keystore was made with a root key"
        " not installed here (every replica needs the project's root.key)"
    )


def _remove_if_made(directory: Path, made_directory: bool) -> None:
    if made_directory:
        with contextlib.suppress(OSError):  # not empty: something else lives there
            directory.rmdir()


class Keystore:
    def __init__(
        self,
        directory: Path,
        *,
        init: bool = False,
        cmk_limit: int = 1000,
        clock: Callable[[], float] = time.time,
        database_url: str | None = None,
    ) -> None:
        made_directory = init and not directory.exists()
        if init:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        elif not directory.is_dir():
            raise KeystoreSetupError(f"keystore directory {directory} does not exist; start once with --init")
        root_key, created, shared = self._load_root_key(directory, init, made_directory, database_url)
        self._sealer = Sealer(root_key)
        self._cmk_limit = cmk_limit
        self._clock = clock
        self._lock = threading.RLock()
        self._seen_data_version = -1
        self._records: dict[str, _KeyRecord] = {}
        self._alias_ids: dict[str, str] = {}
        self._ciphers: dict[tuple[str, int], AESGCM] = {}
        self._private_keys: dict[str, asymmetric.PrivateKey] = {}  # asymmetric keys have one version
        self._policies: dict[tuple[str, str], str | None] = {}  # every authorised call reads one
        self._names: dict[str, tuple[str, ...]] = {}  # a principal limited to some keys names them by alias
        self._db = shared if shared is not None else self._open_database(directory, database_url)
        try:
            self._check_root_key()
        except KeystoreSetupError:
            self._db.close()
            if not created:
                raise
            # Another server (a replica on the same database) made this project's keystore first, with its own
            # root key: the one just made can never open it, so it must not stay to fail every later request.
            (directory / ROOT_KEY_FILE).unlink(missing_ok=True)
            _remove_if_made(directory, made_directory)
            raise _not_installed(directory) from None

    # --- setup -------------------------------------------------------------------------

    @classmethod
    def _load_root_key(
        cls, directory: Path, init: bool, made_directory: bool, database_url: str | None
    ) -> tuple[bytes, bool, Database | None]:
        """The root key, whether this call made it, and the shared database when it was opened first.

        A shared database is read before a root key is made: a project another replica made is refused with
        nothing written here. (A root key made first and left by a database failure was no longer "made here"
        at the next open: the project refused with a 500 for ever, and the server's start with it.)
        """
        root_file, shared = directory / ROOT_KEY_FILE, None
        try:
            if database_url is not None and init and not root_file.exists():
                shared = cls._open_database(directory, database_url)
                if shared.execute("SELECT 1 FROM meta WHERE name = 'root_check'").fetchone() is not None:
                    raise _not_installed(directory)
            return (*load_root_key(root_file, init=init), shared)
        except BaseException:
            if shared is not None:
                shared.close()
            _remove_if_made(directory, made_directory)
            raise

    @staticmethod
    def _open_database(directory: Path, database_url: str | None) -> Database:
        if database_url is None:
            return SqliteDatabase(directory / DATABASE_FILE)
        from kubekms.keystore.postgres import PostgresDatabase  # psycopg only when configured

        return PostgresDatabase(database_url, schema=directory.name)

    def _check_root_key(self) -> None:
        with self._write() as db:
            row = db.execute("SELECT value FROM meta WHERE name = 'root_check'").fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO meta (name, value) VALUES ('root_check', ?)",
                    (self._sealer.seal(_ROOT_CHECK, "kubekms/root-check"),),
                )
                return
        if self._sealer.unseal(row["value"], "kubekms/root-check") != _ROOT_CHECK:
            raise KeystoreSetupError("the root key does not belong to this keystore")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- transactions and cache -------------------------------------------------------

    def _read(self) -> _Reading:
        """One call's reads: this process's lock, on one database connection, after a look for others' commits.

        Inside a server request (:mod:`~kubekms.keystore.request_scope`) only its first call looks.
        """
        return _Reading(self)

    @contextlib.contextmanager
    def _write(self) -> Iterator[Database]:
        with self._lock:
            try:
                with self._db.transaction():
                    self._refresh_cache()  # always: the write's checks run on rows as they are now
                    yield self._db
            finally:
                self._drop_cache()

    def _drop_cache(self) -> None:
        self._records.clear()
        self._alias_ids.clear()
        self._ciphers.clear()
        self._private_keys.clear()
        self._policies.clear()
        self._names.clear()

    def _refresh_cache(self) -> None:
        """Drop cached rows when another connection (process) committed since we looked."""
        data_version = self._db.data_version()
        if data_version != self._seen_data_version:
            self._drop_cache()
            self._seen_data_version = data_version

    def _resolve(self, key_ref: str) -> _KeyRecord:
        """The key named by id or alias (caller holds the lock)."""
        if not isinstance(key_ref, str) or not key_ref:
            raise InvalidArgument("key_id is required", reason=Reason.PARAMETER_MISSING)
        cached = self._records.get(key_ref)  # only a key id (lower case) names a cached row
        if cached is not None:
            return cached
        key_id = key_ref.lower() if is_key_id(key_ref) else self._alias_ids.get(key_ref)
        if key_id is None:
            row = self._db.execute("SELECT key_id FROM aliases WHERE alias = ?", (key_ref,)).fetchone()
            if row is None:
                raise NotFound(f"no key with alias {key_ref!r}")
            key_id = self._alias_ids[key_ref] = row["key_id"]
        record = self._records.get(key_id)
        if record is None:
            row = self._db.execute("SELECT * FROM keys WHERE key_id = ?", (key_id,)).fetchone()
            if row is None:
                raise NotFound(f"key {key_id} does not exist")
            record = self._records[key_id] = _KeyRecord.from_row(row)
        return record

    def _material(self, key_id: str, version: int) -> bytes:
        """One version's key material, unsealed (caller holds the lock)."""
        row = self._db.execute(
            "SELECT sealed, enabled FROM key_versions WHERE key_id = ? AND version = ?", (key_id, version)
        ).fetchone()
        if row is None or row["sealed"] is None:
            raise InvalidCiphertext(f"key {key_id} has no version {version}")
        if not row["enabled"]:
            raise Disabled(f"version {version} of key {key_id} is disabled")
        return self._sealer.unseal(row["sealed"], key_version_context(key_id, version))

    def _cipher(self, key_id: str, version: int) -> AESGCM:
        cipher = self._ciphers.get((key_id, version))
        if cipher is None:
            cipher = self._ciphers[(key_id, version)] = AESGCM(self._material(key_id, version))
        return cipher

    def _private_key(self, record: _KeyRecord) -> asymmetric.PrivateKey:
        private = self._private_keys.get(record.key_id)
        if private is None:
            material = self._material(record.key_id, record.current_version)
            private = self._private_keys[record.key_id] = asymmetric.load_private(material)
        return private

    def _usable(self, key_ref: str, *, specs: tuple[str, ...], usage: str) -> _KeyRecord:
        """The enabled key named, of one of ``specs`` and of ``usage`` (caller holds the lock)."""
        record = self._resolve(key_ref)
        rules.require_key_type(record.key_id, record.key_spec, record.key_usage, specs=specs, usage=usage)
        rules.require_usable(record.key_id, record.state)
        if record.material_expires_at is not None and record.material_expires_at <= self._clock():
            raise InvalidState(f"the imported key material of key {record.key_id} expired")  # before run_due_work
        return record

    def _metadata(self, record: _KeyRecord) -> KeyMetadata:
        aliases = tuple(
            row["alias"]
            for row in self._db.execute("SELECT alias FROM aliases WHERE key_id = ? ORDER BY alias", (record.key_id,))
        )
        tags = {
            row["tag_key"]: row["tag_value"]
            for row in self._db.execute(
                "SELECT tag_key, tag_value FROM tags WHERE key_id = ? ORDER BY tag_key", (record.key_id,)
            )
        }
        return KeyMetadata(
            key_id=record.key_id,
            alias=record.alias,
            description=record.description,
            key_spec=record.key_spec,
            key_usage=record.key_usage,
            state=record.state,
            created_at=datetime.fromtimestamp(record.created_at, UTC),
            current_version=record.current_version,
            rotation_enabled=record.rotation_enabled,
            rotation_interval_days=record.rotation_interval_days,
            last_rotation_at=_to_datetime(record.last_rotation_at),
            deletion_date=_to_datetime(record.deletion_date),
            aliases=aliases,
            tags=tags,
            origin=record.origin,
            material_expires_at=_to_datetime(record.material_expires_at),
            region=record.region,
        )

    def _add_version(
        self, db: Database, key_id: str, version: int, now: float, key_spec: str, *, on_demand: bool = False
    ) -> None:
        sealed = self._sealer.seal(asymmetric.new_material(key_spec), key_version_context(key_id, version))
        db.execute(
            "INSERT INTO key_versions (key_id, version, sealed, created_at, on_demand) VALUES (?, ?, ?, ?, ?)",
            (key_id, version, sealed, now, int(on_demand)),
        )

    # --- lifecycle ----------------------------------------------------------------------

    def create_key(
        self,
        alias: str,
        *,
        description: str = "",
        key_spec: str = "AES_256",
        key_usage: str = "ENCRYPT_DECRYPT",
        tags: Mapping[str, str] | None = None,
        policy: str | None = None,
        origin: str = ORIGIN_KMS,
        region: str = "",
    ) -> KeyMetadata:
        """``region``: the AWS region of a key made through the AWS wire; '' (the other wires) is no region."""
        if alias:  # the v1.0 wire always names one; the AWS wire creates keys without
            rules.check_alias(alias)
        rules.check_description(description)
        rules.check_key_spec(key_spec, key_usage)
        rules.check_origin(origin, key_spec)
        rules.check_tags(tags or {})
        if policy is not None:
            rules.check_key_policy(rules.KEY_POLICY_NAME, policy)
        key_id, now = str(uuid.uuid4()), self._clock()
        state = KeyState.ENABLED if origin == ORIGIN_KMS else KeyState.PENDING_IMPORT
        with self._write() as db:
            (used,) = db.execute("SELECT COUNT(*) FROM keys WHERE state != ?", (KeyState.DESTROYED.value,)).fetchone()
            if used >= self._cmk_limit:
                raise LimitExceeded(f"the project already holds {used} keys, the limit is {self._cmk_limit}")
            if alias and db.execute("SELECT 1 FROM aliases WHERE alias = ?", (alias,)).fetchone():
                raise AlreadyExists(f"alias {alias!r} is already in use")
            db.execute(
                "INSERT INTO keys (key_id, alias, description, key_spec, key_usage, origin, state, created_at,"
                " current_version, rotation_interval_days, region) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
                (key_id, alias, description, key_spec, key_usage, origin, state.value, now,
                 rules.DEFAULT_ROTATION_DAYS, region),
            )  # fmt: skip
            if origin == ORIGIN_KMS:
                self._add_version(db, key_id, 1, now, key_spec)
            else:  # the material comes with ImportKeyMaterial
                db.execute("INSERT INTO key_versions (key_id, version, created_at) VALUES (?, 1, ?)", (key_id, now))
            if alias:
                db.execute("INSERT INTO aliases (alias, key_id) VALUES (?, ?)", (alias, key_id))
            db.executemany(
                "INSERT INTO tags (key_id, tag_key, tag_value) VALUES (?, ?, ?)",
                [(key_id, k, v) for k, v in (tags or {}).items()],
            )
            if policy is not None:
                db.execute(
                    "INSERT INTO key_policies (key_id, name, document) VALUES (?, ?, ?)",
                    (key_id, rules.KEY_POLICY_NAME, policy),
                )
        return self.describe_key(key_id)

    def describe_key(self, key_ref: str) -> KeyMetadata:
        with self._read():
            return self._metadata(self._resolve(key_ref))

    def key_names(self, key_ref: str) -> tuple[str, ...]:
        """The key's id, name and aliases: what a principal's key list may name it by (cached, as rows are)."""
        with self._read():
            record = self._resolve(key_ref)
            names = self._names.get(record.key_id)
            if names is None:
                rows = self._db.execute("SELECT alias FROM aliases WHERE key_id = ? ORDER BY alias", (record.key_id,))
                names = self._names[record.key_id] = (record.key_id, record.alias, *(row["alias"] for row in rows))
            return names

    def key_region(self, key_ref: str) -> str:
        """The key's AWS region ('' for none): the AWS wire's check on every request, from the cached row."""
        with self._read():
            return self._resolve(key_ref).region

    def list_keys(
        self,
        *,
        limit: int = 100,
        marker: str | None = None,
        state: KeyState | None = None,
        key_spec: str | None = None,
        region: str | None = None,
    ) -> KeyPage:
        """``region``: only the keys of that AWS region and those of no region (None: every key)."""
        rules.check_range("limit", limit, rules.LIST_LIMIT, reason=Reason.LIST_LIMIT_INVALID)
        offset = 0
        if marker:
            if not marker.isdigit():
                raise InvalidArgument(f"invalid marker {marker!r}", reason=Reason.MARKER_INVALID)
            offset = int(marker)
        if state is None:
            where, params = "state != ?", [KeyState.DESTROYED.value]
        else:
            where, params = "state = ?", [state.value]
        if key_spec is not None:
            where, params = f"{where} AND key_spec = ?", [*params, key_spec]
        if region is not None:
            where, params = f"{where} AND region IN (?, '')", [*params, region]
        with self._read():
            (total,) = self._db.execute(f"SELECT COUNT(*) FROM keys WHERE {where}", params).fetchone()  # noqa: S608
            rows = self._db.execute(
                f"SELECT * FROM keys WHERE {where} ORDER BY created_at, {self._db.insertion_order} LIMIT ? OFFSET ?",  # noqa: S608
                [*params, limit, offset],
            ).fetchall()
            keys = [self._metadata(_KeyRecord.from_row(row)) for row in rows]
        next_marker = str(offset + len(keys)) if offset + len(keys) < total else None
        return KeyPage(keys=keys, next_marker=next_marker, total=total)

    def find_keys_by_tag(self, tag_key: str, tag_value: str) -> list[KeyMetadata]:
        with self._read():
            order = self._db.insertion_order
            rows = self._db.execute(
                "SELECT k.* FROM keys k JOIN tags t ON t.key_id = k.key_id"  # noqa: S608 (names are ours)
                f" WHERE t.tag_key = ? AND t.tag_value = ? ORDER BY k.created_at, k.{order}",
                (tag_key, tag_value),
            ).fetchall()
            return [self._metadata(_KeyRecord.from_row(row)) for row in rows]

    def _update(self, key_ref: str, change: Callable[[_KeyRecord], Mapping[str, object]]) -> KeyMetadata:
        """Read-check-write one key row in a single write transaction."""
        with self._write() as db:
            record = self._resolve(key_ref)
            columns = change(record)
            if columns:
                assignments = ", ".join(f"{name} = ?" for name in columns)
                db.execute(
                    f"UPDATE keys SET {assignments} WHERE key_id = ?",  # noqa: S608 (names are ours)
                    [*columns.values(), record.key_id],
                )
            key_id = record.key_id
        return self.describe_key(key_id)

    def update_description(self, key_ref: str, description: str) -> KeyMetadata:
        rules.check_description(description)

        def change(record: _KeyRecord) -> Mapping[str, object]:
            rules.require_manageable(record.key_id, record.state)
            return {"description": description}

        return self._update(key_ref, change)

    def enable_key(self, key_ref: str) -> KeyMetadata:
        return self._update(key_ref, lambda r: {"state": rules.next_state_enable(r.key_id, r.state).value})

    def disable_key(self, key_ref: str) -> KeyMetadata:
        return self._update(key_ref, lambda r: {"state": rules.next_state_disable(r.key_id, r.state).value})

    def schedule_key_deletion(
        self, key_ref: str, pending_days: int, *, window: tuple[int, int] = rules.PENDING_DAYS
    ) -> KeyMetadata:
        """``window``: the caller's range of days (the Cloud KMS wire's starts at Google's 1 day, not AWS's 7)."""
        rules.check_range("pending_days", pending_days, window, reason=Reason.PENDING_DAYS_INVALID)

        def change(record: _KeyRecord) -> Mapping[str, object]:
            state = rules.next_state_schedule_deletion(record.key_id, record.state)
            return {"state": state.value, "deletion_date": self._clock() + pending_days * _DAY}

        return self._update(key_ref, change)

    def cancel_key_deletion(self, key_ref: str) -> KeyMetadata:
        """The key comes back Disabled; one of imported material without its material (never imported, deleted or
        expired) comes back PendingImport, as it was: Disabled, enable_key would make it Enabled with no material."""

        def change(record: _KeyRecord) -> Mapping[str, object]:
            state = rules.next_state_cancel_deletion(record.key_id, record.state)
            if (
                record.origin == ORIGIN_EXTERNAL
                and self._db.execute(
                    "SELECT 1 FROM key_versions WHERE key_id = ? AND sealed IS NULL", (record.key_id,)
                ).fetchone()
            ):
                state = KeyState.PENDING_IMPORT
            return {"state": state.value, "deletion_date": None}

        return self._update(key_ref, change)

    # --- rotation -----------------------------------------------------------------------

    def _rotation_status(self, record: _KeyRecord) -> RotationStatus:
        return RotationStatus(
            enabled=record.rotation_enabled,
            interval_days=record.rotation_interval_days,
            last_rotation_at=_to_datetime(record.last_rotation_at),
            number_of_rotations=record.number_of_rotations,
            next_rotation_at=_to_datetime(record.next_rotation_at()),
        )

    def set_rotation(self, key_ref: str, *, enabled: bool, interval_days: int | None = None) -> RotationStatus:
        if interval_days is not None:
            rules.check_range("rotation interval (days)", interval_days, rules.ROTATION_DAYS)

        def change(record: _KeyRecord) -> Mapping[str, object]:
            rules.require_manageable(record.key_id, record.state)
            rules.require_rotatable(record.key_id, record.key_spec, record.origin)
            columns: dict[str, object] = {"rotation_enabled": int(enabled)}
            if interval_days is not None:
                columns["rotation_interval_days"] = interval_days
            return columns

        key_id = self._update(key_ref, change).key_id
        return self.get_rotation_status(key_id)

    def get_rotation_status(self, key_ref: str) -> RotationStatus:
        with self._read():
            return self._rotation_status(self._resolve(key_ref))

    def rotate_key(self, key_ref: str) -> KeyMetadata:
        """An on-demand rotation. A symmetric key of imported material rotates to the material imported for it
        (``import_key_material(new_material=True)``, pending until now); without one it is refused (InvalidState)."""
        with self._write() as db:
            record = self._resolve(key_ref)
            if not (record.origin == ORIGIN_EXTERNAL and record.key_spec == SYMMETRIC_KEY_SPEC):
                rules.require_rotatable(record.key_id, record.key_spec, record.origin)
            rules.require_usable(record.key_id, record.state)
            (done,) = db.execute(
                "SELECT COUNT(*) FROM key_versions WHERE key_id = ? AND on_demand = 1", (record.key_id,)
            ).fetchone()
            if done >= rules.ON_DEMAND_ROTATIONS:
                raise LimitExceeded(
                    f"key {record.key_id} already had {rules.ON_DEMAND_ROTATIONS} on-demand rotations, the limit "
                    "(automatic rotation goes on)"
                )
            if record.origin == ORIGIN_EXTERNAL:
                self._rotate_to_pending(db, record, self._clock())
            else:
                self._rotate(db, record, self._clock(), on_demand=True)
        return self.describe_key(record.key_id)

    @staticmethod
    def _rotate_to_pending(db: Database, record: _KeyRecord, now: float) -> None:
        """The key's pending imported material becomes its current version (the old ones keep decrypting)."""
        row = db.execute(
            "SELECT version FROM imported_materials WHERE key_id = ? AND pending = 1", (record.key_id,)
        ).fetchone()
        if row is None:
            raise InvalidState(
                f"key {record.key_id} has no new key material to rotate to: import one for the rotation first "
                "(ImportKeyMaterial with ImportType NEW_KEY_MATERIAL)"
            )
        version = int(row["version"])
        db.execute(
            "UPDATE imported_materials SET pending = 0 WHERE key_id = ? AND version = ?", (record.key_id, version)
        )
        db.execute(
            "UPDATE key_versions SET on_demand = 1, created_at = ? WHERE key_id = ? AND version = ?",
            (now, record.key_id, version),
        )
        db.execute(
            "UPDATE keys SET current_version = ?, last_rotation_at = ?, number_of_rotations = number_of_rotations + 1"
            " WHERE key_id = ?",
            (version, now, record.key_id),
        )

    def _rotate(self, db: Database, record: _KeyRecord, now: float, *, on_demand: bool = False) -> None:
        version = record.current_version + 1
        self._add_version(db, record.key_id, version, now, record.key_spec, on_demand=on_demand)
        db.execute(
            "UPDATE keys SET current_version = ?, last_rotation_at = ?, number_of_rotations = number_of_rotations + 1"
            " WHERE key_id = ?",
            (version, now, record.key_id),
        )

    def set_version_enabled(self, key_ref: str, version: int, *, enabled: bool) -> None:
        """Enable or disable one version; the current version cannot be disabled (rotate first)."""
        with self._write() as db:
            record = self._resolve(key_ref)
            rules.require_manageable(record.key_id, record.state)
            if not 1 <= version <= record.current_version:
                raise InvalidArgument(f"key {record.key_id} has no version {version}")
            if version == record.current_version and not enabled:
                raise InvalidState(f"version {version} is the current version of key {record.key_id}; rotate first")
            db.execute(
                "UPDATE key_versions SET enabled = ? WHERE key_id = ? AND version = ?",
                (int(enabled), record.key_id, version),
            )

    def disabled_versions(self, key_ref: str) -> frozenset[int]:
        """The versions of a key that are disabled (the web console shows each version's state)."""
        with self._read():
            record = self._resolve(key_ref)
            rows = self._db.execute(
                "SELECT version FROM key_versions WHERE key_id = ? AND enabled = 0", (record.key_id,)
            ).fetchall()
        return frozenset(int(row["version"]) for row in rows)

    def key_versions(self, key_ref: str) -> list[KeyVersion]:
        """Every version of a key, oldest first (the AWS wire lists the rotations that made them)."""
        with self._read():
            record = self._resolve(key_ref)
            rows = self._db.execute(
                "SELECT v.version, v.created_at, v.on_demand, COALESCE(m.pending, 0) AS pending FROM key_versions v"
                " LEFT JOIN imported_materials m ON m.key_id = v.key_id AND m.version = v.version"
                " WHERE v.key_id = ? ORDER BY v.version",
                (record.key_id,),
            ).fetchall()
        return [
            KeyVersion(
                int(row["version"]),
                datetime.fromtimestamp(row["created_at"], UTC),
                bool(row["on_demand"]),
                bool(row["pending"]),
            )
            for row in rows
        ]

    def run_due_work(self) -> DueWork:
        """Rotate keys whose interval elapsed and destroy keys whose pending window ended."""
        now = self._clock()
        rotated: list[str] = []
        destroyed: list[str] = []
        with self._write() as db:
            for row in db.execute(
                "SELECT * FROM keys WHERE rotation_enabled = 1 AND state = ?", (KeyState.ENABLED.value,)
            ).fetchall():
                record = _KeyRecord.from_row(row)
                due = record.next_rotation_at()
                if due is not None and due <= now:
                    self._rotate(db, record, now)
                    rotated.append(record.key_id)
            expired = db.execute(
                "SELECT key_id FROM keys WHERE material_expires_at <= ? AND state IN (?, ?)",
                (now, KeyState.ENABLED.value, KeyState.DISABLED.value),
            ).fetchall()
            for row in expired:
                self._forget_material(db, row["key_id"])
            for row in db.execute(
                "SELECT key_id FROM keys WHERE state = ? AND deletion_date <= ?",
                (KeyState.PENDING_DELETION.value, now),
            ).fetchall():
                key_id = row["key_id"]
                db.execute("UPDATE key_versions SET sealed = NULL WHERE key_id = ?", (key_id,))
                db.execute("DELETE FROM aliases WHERE key_id = ?", (key_id,))
                db.execute("UPDATE keys SET state = ? WHERE key_id = ?", (KeyState.DESTROYED.value, key_id))
                destroyed.append(key_id)
            forgotten = bool(destroyed or expired)
        if forgotten:
            with self._lock:
                self._db.scrub()
        return DueWork(rotated=tuple(rotated), destroyed=tuple(destroyed))

    # --- random and data keys -----------------------------------------------------------

    @staticmethod
    def generate_random(length: int) -> bytes:
        rules.check_range("random length (bytes)", length, rules.RANDOM_BYTES, reason=Reason.RANDOM_LENGTH_INVALID)
        return os.urandom(length)

    def _seal_under_current(
        self, key_ref: str, plaintext: bytes, aad: bytes, *, answer_plaintext: bool, max_aad: int = rules.MAX_AAD_BYTES
    ) -> DataKey:
        """``plaintext`` sealed under the key's current version; ``answer_plaintext``: the answer carries it too."""
        rules.check_aad(aad, max_aad)
        with self._read():
            record = self._usable(key_ref, specs=(SYMMETRIC_KEY_SPEC,), usage="ENCRYPT_DECRYPT")
            cipher = self._cipher(record.key_id, record.current_version)
        sealed = ciphertext.seal(cipher, record.key_id, record.current_version, plaintext, aad)
        return DataKey(key_id=record.key_id, key_version=record.current_version, ciphertext=sealed,
                       plaintext=plaintext if answer_plaintext else None)  # fmt: skip

    def encrypt_data_key(
        self, key_ref: str, plaintext: bytes, *, aad: bytes = b"", limits: rules.SealLimits = rules.SEAL_LIMITS
    ) -> DataKey:
        rules.check_range(
            "plaintext length (bytes)",
            len(plaintext),
            (rules.ENCRYPT_PLAINTEXT_BYTES[0], limits.plaintext),
            reason=Reason.PLAINTEXT_LENGTH_INVALID,
        )
        return self._seal_under_current(key_ref, plaintext, aad, answer_plaintext=False, max_aad=limits.aad)

    def create_data_key(
        self, key_ref: str, *, length: int = 32, aad: bytes = b"", with_plaintext: bool = True
    ) -> DataKey:
        rules.check_data_key_length(length)
        return self._seal_under_current(key_ref, os.urandom(length), aad, answer_plaintext=with_plaintext)

    def decrypt_data_key(
        self, key_ref: str, blob: bytes, *, aad: bytes = b"", limits: rules.SealLimits = rules.SEAL_LIMITS
    ) -> bytes:
        rules.check_aad(aad, limits.aad)
        envelope = ciphertext.parse(blob)
        with self._read():
            record = self._resolve(key_ref)
            if envelope.key_id != record.key_id:
                raise InvalidCiphertext(f"ciphertext was not made under key {record.key_id}")
            record = self._usable(record.key_id, specs=(SYMMETRIC_KEY_SPEC,), usage="ENCRYPT_DECRYPT")
            if not 1 <= envelope.key_version <= record.current_version:
                raise InvalidCiphertext(f"ciphertext names version {envelope.key_version} that key does not have")
            cipher = self._cipher(record.key_id, envelope.key_version)
        return ciphertext.open_sealed(cipher, envelope, aad)

    def create_data_key_pair(self, key_ref: str, pair_spec: str, *, aad: bytes = b"") -> DataKeyPair:
        """A key pair whose private key (PKCS #8 DER) is sealed under the symmetric key, as a data key is."""
        if pair_spec not in DATA_KEY_PAIR_SPECS:
            raise InvalidArgument(f"KeyPairSpec must be one of {', '.join(DATA_KEY_PAIR_SPECS)}, got {pair_spec!r}")
        private = asymmetric.new_material(pair_spec)
        wrapped = self._seal_under_current(key_ref, private, aad, answer_plaintext=False)
        public = asymmetric.public_der(asymmetric.load_private(private))
        return DataKeyPair(wrapped.key_id, pair_spec, public, wrapped.ciphertext, private)

    # --- asymmetric and HMAC keys -------------------------------------------------------

    def get_public_key(self, key_ref: str) -> bytes:
        """DER SubjectPublicKeyInfo; an enabled key only (AWS: DisabledException on a disabled one)."""
        with self._read():
            record = self._resolve(key_ref)
            if record.key_spec not in (*RSA_KEY_SPECS, *ECC_KEY_SPECS):
                raise InvalidArgument(
                    f"key {record.key_id} is a {record.key_spec} key: it has no public key",
                    reason=Reason.UNSUPPORTED_OPERATION,
                )
            rules.require_usable(record.key_id, record.state)
            return asymmetric.public_der(self._private_key(record))

    def _signing_key(self, key_ref: str, algorithm: str) -> tuple[str, asymmetric.PrivateKey]:
        with self._read():
            record = self._usable(key_ref, specs=(*RSA_KEY_SPECS, *ECC_KEY_SPECS), usage="SIGN_VERIFY")
            asymmetric.check_algorithm(record.key_id, record.key_spec, record.key_usage, algorithm)
            return record.key_id, self._private_key(record)

    def sign(self, key_ref: str, message: bytes, *, algorithm: str, digest: bool = False) -> KeyOutput:
        key_id, private = self._signing_key(key_ref, algorithm)
        return KeyOutput(key_id, asymmetric.sign(private, algorithm, message, digest=digest))

    def verify(self, key_ref: str, message: bytes, signature: bytes, *, algorithm: str, digest: bool = False) -> bool:
        _, private = self._signing_key(key_ref, algorithm)
        return asymmetric.verify(private.public_key(), algorithm, message, signature, digest=digest)

    def _encryption_key(self, key_ref: str, algorithm: str) -> tuple[str, asymmetric.PrivateKey]:
        with self._read():
            record = self._usable(key_ref, specs=RSA_KEY_SPECS, usage="ENCRYPT_DECRYPT")
            asymmetric.check_algorithm(record.key_id, record.key_spec, record.key_usage, algorithm)
            return record.key_id, self._private_key(record)

    def encrypt_asymmetric(self, key_ref: str, plaintext: bytes, *, algorithm: str) -> KeyOutput:
        key_id, private = self._encryption_key(key_ref, algorithm)
        return KeyOutput(key_id, asymmetric.encrypt(private.public_key(), algorithm, plaintext))

    def decrypt_asymmetric(self, key_ref: str, blob: bytes, *, algorithm: str) -> KeyOutput:
        key_id, private = self._encryption_key(key_ref, algorithm)
        return KeyOutput(key_id, asymmetric.decrypt(private, algorithm, blob))

    def _mac_key(self, key_ref: str, algorithm: str) -> tuple[str, bytes]:
        with self._read():
            record = self._usable(key_ref, specs=HMAC_KEY_SPECS, usage="GENERATE_VERIFY_MAC")
            asymmetric.check_algorithm(record.key_id, record.key_spec, record.key_usage, algorithm)
            return record.key_id, self._material(record.key_id, record.current_version)

    def generate_mac(self, key_ref: str, message: bytes, *, algorithm: str) -> KeyOutput:
        key_id, material = self._mac_key(key_ref, algorithm)
        return KeyOutput(key_id, asymmetric.mac(material, algorithm, message))

    def verify_mac(self, key_ref: str, message: bytes, mac: bytes, *, algorithm: str) -> bool:
        _, material = self._mac_key(key_ref, algorithm)
        return asymmetric.verify_mac(material, algorithm, message, mac)

    # --- imported key material ---------------------------------------------------------

    def get_parameters_for_import(self, key_ref: str, *, wrapping_algorithm: str,
                                  wrapping_key_spec: str) -> ImportParameters:  # fmt: skip
        """A new RSA wrapping key (its private half sealed here) and the token that names it, valid 24 hours."""
        rules.check_wrapping(wrapping_algorithm, wrapping_key_spec)
        wrapping_key = asymmetric.new_material(wrapping_key_spec)
        token = secrets.token_bytes(48)
        token_hash = hashlib.sha256(token).hexdigest()
        with self._write() as db:
            record = self._resolve(key_ref)
            rules.require_importable(record.key_id, record.key_spec, record.origin, record.state)
            now = self._clock()
            db.execute("DELETE FROM import_tokens WHERE expires_at <= ?", (now,))
            sealed = self._sealer.seal(wrapping_key, _import_context(record.key_id, token_hash))
            db.execute(
                "INSERT INTO import_tokens (token_hash, key_id, algorithm, wrapping_key, expires_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (token_hash, record.key_id, wrapping_algorithm, sealed, now + rules.IMPORT_TOKEN_SECONDS),
            )
        public = asymmetric.public_der(asymmetric.load_private(wrapping_key))
        return ImportParameters(
            record.key_id, public, token, datetime.fromtimestamp(now + rules.IMPORT_TOKEN_SECONDS, UTC)
        )

    def import_key_material(self, key_ref: str, import_token: bytes, encrypted_material: bytes, *,
                            valid_to: float | None = None, new_material: bool = False) -> None:  # fmt: skip
        """Unwrap the material with the token's wrapping key and seal it into its version.

        The first material is version 1. After it, the material must be one of the key's (a re-import, after a
        deletion or an expiry, or for another expiry), sealed again into its own version — unless ``new_material``
        (AWS's ImportType NEW_KEY_MATERIAL): then it is staged as the next version, pending until
        :meth:`rotate_key` makes it current (one at a time, into a key holding all its materials, without an expiry
        of its own: the key's expiry is one for all its materials). The key is enabled once every version has its
        material again.
        """
        with self._write() as db:
            record = self._resolve(key_ref)
            rules.require_importable(record.key_id, record.key_spec, record.origin, record.state)
            rules.check_material_expiry(valid_to, self._clock())
            material = self._unwrap(db, record.key_id, import_token, encrypted_material)
            if len(material) != _MATERIAL_BYTES:
                raise InvalidArgument(f"the material is not {_MATERIAL_BYTES} bytes",
                                      reason=Reason.KEY_MATERIAL_INCORRECT)  # fmt: skip
            digest = hashlib.sha256(_DIGEST_PREFIX + material).hexdigest()
            rows = db.execute(
                "SELECT version, digest, pending FROM imported_materials WHERE key_id = ?", (record.key_id,)
            ).fetchall()
            known = {row["digest"]: int(row["version"]) for row in rows}
            if not known:
                version = 1
            elif new_material:
                version = self._stage_material(record, rows, known, digest, valid_to)
            elif digest in known:
                version = known[digest]
            else:
                raise InvalidArgument("the material is not key material imported into this key before",
                                      reason=Reason.KEY_MATERIAL_INCORRECT)  # fmt: skip
            sealed = self._sealer.seal(material, key_version_context(record.key_id, version))
            if version in known.values() or not known:  # its version row is there (version 1: since create_key)
                db.execute(
                    "UPDATE key_versions SET sealed = ? WHERE key_id = ? AND version = ?",
                    (sealed, record.key_id, version),
                )
            else:  # staged: a new version, pending until rotate_key
                db.execute(
                    "INSERT INTO key_versions (key_id, version, sealed, created_at) VALUES (?, ?, ?, ?)",
                    (record.key_id, version, sealed, self._clock()),
                )
            if version not in known.values():
                db.execute(
                    "INSERT INTO imported_materials (key_id, version, digest, pending) VALUES (?, ?, ?, ?)",
                    (record.key_id, version, digest, int(version != 1)),
                )
            (missing,) = db.execute(
                "SELECT COUNT(*) FROM key_versions WHERE key_id = ? AND sealed IS NULL", (record.key_id,)
            ).fetchone()
            state = KeyState.ENABLED if record.state is KeyState.PENDING_IMPORT and not missing else record.state
            # a (re-)import of the key's material sets the key's expiry; staged new material leaves it as it is
            expires = valid_to if version == 1 or version in known.values() else record.material_expires_at
            db.execute(
                "UPDATE keys SET state = ?, material_expires_at = ?, material_digest = COALESCE(material_digest, ?)"
                " WHERE key_id = ?",
                (state.value, expires, digest, record.key_id),
            )

    @staticmethod
    def _stage_material(
        record: _KeyRecord, rows: Sequence[Row], known: Mapping[str, int], digest: str, valid_to: float | None
    ) -> int:
        """The version new material is staged as, pending rotation; or why it is not."""
        if digest in known:
            raise InvalidArgument(f"this material is already version {known[digest]} of key {record.key_id}",
                                  reason=Reason.KEY_MATERIAL_INCORRECT)  # fmt: skip
        if record.key_spec != SYMMETRIC_KEY_SPEC:
            raise InvalidArgument(f"key {record.key_id} is a {record.key_spec} key: it keeps its first material",
                                  reason=Reason.UNSUPPORTED_OPERATION)  # fmt: skip
        if any(row["pending"] for row in rows):
            raise InvalidState(f"key {record.key_id} already has new key material pending rotation: rotate it "
                               "on demand first")  # fmt: skip
        if record.state is KeyState.PENDING_IMPORT:
            raise InvalidState(f"key {record.key_id} waits for its own material to be imported again first")
        if valid_to is not None:
            raise InvalidArgument("new key material for a rotation takes no expiry here (the key's expiry is one "
                                  "for all its materials): import it with ExpirationModel KEY_MATERIAL_DOES_NOT_EXPIRE",
                                  reason=Reason.UNSUPPORTED_OPERATION)  # fmt: skip
        return max(int(row["version"]) for row in rows) + 1

    def _unwrap(self, db: Database, key_id: str, import_token: bytes, encrypted_material: bytes) -> bytes:
        token_hash = hashlib.sha256(import_token).hexdigest()
        row = db.execute(
            "SELECT * FROM import_tokens WHERE token_hash = ? AND key_id = ?", (token_hash, key_id)
        ).fetchone()
        if row is None:
            raise InvalidArgument(f"the import token was not issued for key {key_id}",
                                  reason=Reason.IMPORT_TOKEN_INVALID)  # fmt: skip
        if row["expires_at"] <= self._clock():
            raise InvalidArgument("the import token expired; get new parameters for import",
                                  reason=Reason.IMPORT_TOKEN_EXPIRED)  # fmt: skip
        sealed = self._sealer.unseal(row["wrapping_key"], _import_context(key_id, token_hash))
        return asymmetric.decrypt(asymmetric.load_private(sealed), row["algorithm"], encrypted_material)

    def delete_imported_key_material(self, key_ref: str) -> None:
        with self._write() as db:
            record = self._resolve(key_ref)
            rules.require_importable(record.key_id, record.key_spec, record.origin, record.state)
            self._forget_material(db, record.key_id)
        with self._lock:
            self._db.scrub()

    @staticmethod
    def _forget_material(db: Database, key_id: str) -> None:
        """The imported material goes (deleted, or expired): the key waits for the same material again."""
        db.execute("UPDATE key_versions SET sealed = NULL WHERE key_id = ?", (key_id,))
        db.execute("UPDATE keys SET state = ?, material_expires_at = NULL WHERE key_id = ?",
                   (KeyState.PENDING_IMPORT.value, key_id))  # fmt: skip

    # --- aliases and tags ---------------------------------------------------------------

    def create_alias(self, key_ref: str, alias: str) -> None:
        rules.check_alias(alias)
        with self._write() as db:
            record = self._resolve(key_ref)
            rules.require_manageable(record.key_id, record.state)
            if db.execute("SELECT 1 FROM aliases WHERE alias = ?", (alias,)).fetchone():
                raise AlreadyExists(f"alias {alias!r} is already in use")
            rules.check_alias_count(record.key_id, self._alias_count(db, record.key_id))
            db.execute("INSERT INTO aliases (alias, key_id) VALUES (?, ?)", (alias, record.key_id))

    @staticmethod
    def _alias_count(db: Database, key_id: str) -> int:
        (count,) = db.execute("SELECT COUNT(*) FROM aliases WHERE key_id = ?", (key_id,)).fetchone()
        return int(count)

    def delete_alias(self, key_ref: str, alias: str) -> None:
        with self._write() as db:
            record = self._resolve(key_ref)
            if alias == record.alias:
                raise InvalidArgument(f"{alias!r} is the key's primary alias (key_alias) and cannot be deleted")
            deleted = db.execute("DELETE FROM aliases WHERE alias = ? AND key_id = ?", (alias, record.key_id))
            if deleted.rowcount == 0:
                raise NotFound(f"key {record.key_id} has no alias {alias!r}")

    def update_alias(self, alias: str, key_ref: str) -> None:
        """Point ``alias`` at another key; a key's primary alias (the v1.0 wire's key_alias) stays with its key."""
        with self._write() as db:
            record = self._resolve(key_ref)
            rules.require_manageable(record.key_id, record.state)
            row = db.execute("SELECT key_id FROM aliases WHERE alias = ?", (alias,)).fetchone()
            if row is None:
                raise NotFound(f"no key with alias {alias!r}")
            current = self._resolve(row["key_id"])
            rules.require_manageable(current.key_id, current.state)
            if current.alias == alias:
                raise InvalidArgument(f"{alias!r} is the primary alias (key_alias) of key {current.key_id}")
            if current.key_id != record.key_id:
                rules.check_alias_count(record.key_id, self._alias_count(db, record.key_id))
            db.execute("UPDATE aliases SET key_id = ? WHERE alias = ?", (record.key_id, alias))

    def update_key_alias(self, key_ref: str, alias: str) -> KeyMetadata:
        """Rename the key's primary alias (the v1.0 wire's key_alias; Huawei's update-key-alias).

        The ``keys`` row and the ``aliases`` row change in one write transaction: every wire (the AWS wire's
        ListAliases reads the same rows) sees the new name at once and the old one no longer names the key. A key
        made without one (on the AWS wire) gets one. Rules as create's; a key pending deletion keeps its name
        (as on Huawei), and a reserved name (a Cloud KMS version's, an AWS managed key's) is neither given nor
        taken. The alias's primary key (``aliases.alias``) keeps two renames to one name from both landing.
        """
        rules.check_alias(alias)
        rules.check_not_reserved_alias(alias)
        with self._write() as db:
            record = self._resolve(key_ref)
            rules.require_manageable(record.key_id, record.state)
            reserved = rules.reserved_alias_prefix(record.alias)
            if reserved is not None:
                raise InvalidArgument(
                    f"key {record.key_id} is named {record.alias!r}, a name reserved for "
                    f"{rules.RESERVED_ALIAS_PREFIXES[reserved]}: it cannot be renamed",
                    reason=Reason.ALIAS_INVALID,
                )
            if alias != record.alias:
                if db.execute("SELECT 1 FROM aliases WHERE alias = ?", (alias,)).fetchone():
                    raise AlreadyExists(f"alias {alias!r} is already in use")
                if record.alias:
                    db.execute("DELETE FROM aliases WHERE alias = ? AND key_id = ?", (record.alias, record.key_id))
                else:
                    rules.check_alias_count(record.key_id, self._alias_count(db, record.key_id))
                db.execute("INSERT INTO aliases (alias, key_id) VALUES (?, ?)", (alias, record.key_id))
                db.execute("UPDATE keys SET alias = ? WHERE key_id = ?", (alias, record.key_id))
            key_id = record.key_id
        return self.describe_key(key_id)

    def list_aliases(self, key_ref: str) -> list[str]:
        return list(self.describe_key(key_ref).aliases)

    def tag_key(self, key_ref: str, tags: Mapping[str, str]) -> None:
        with self._write() as db:
            record = self._resolve(key_ref)
            rules.require_manageable(record.key_id, record.state)
            existing = {
                row["tag_key"] for row in db.execute("SELECT tag_key FROM tags WHERE key_id = ?", (record.key_id,))
            }
            rules.check_tags(tags, existing=len(existing - set(tags)))
            db.executemany(
                "INSERT INTO tags (key_id, tag_key, tag_value) VALUES (?, ?, ?)"
                " ON CONFLICT (key_id, tag_key) DO UPDATE SET tag_value = excluded.tag_value",
                [(record.key_id, k, v) for k, v in tags.items()],
            )

    def untag_key(self, key_ref: str, tag_keys: Sequence[str]) -> None:
        with self._write() as db:
            record = self._resolve(key_ref)
            rules.require_manageable(record.key_id, record.state)
            for tag_key in tag_keys:
                rules.check_removable_tag_key(tag_key)
            db.executemany("DELETE FROM tags WHERE key_id = ? AND tag_key = ?", [(record.key_id, k) for k in tag_keys])

    def list_tags(self, key_ref: str) -> dict[str, str]:
        return dict(self.describe_key(key_ref).tags)

    # --- key policies -------------------------------------------------------------------

    def get_key_policy(self, key_ref: str, name: str = rules.KEY_POLICY_NAME) -> str | None:
        """The key's own policy document, None when it has none (the default policy applies)."""
        with self._read():
            record = self._resolve(key_ref)
            cached = (record.key_id, name)
            if cached not in self._policies:
                row = self._db.execute(
                    "SELECT document FROM key_policies WHERE key_id = ? AND name = ?", cached
                ).fetchone()
                self._policies[cached] = None if row is None else str(row["document"])
            return self._policies[cached]

    def put_key_policy(self, key_ref: str, document: str, name: str = rules.KEY_POLICY_NAME) -> None:
        """Store a policy document checked by the caller (:mod:`kubekms.policies`); the keystore checks its size."""
        rules.check_key_policy(name, document)
        with self._write() as db:
            record = self._resolve(key_ref)
            rules.require_manageable(record.key_id, record.state)
            db.execute(
                "INSERT INTO key_policies (key_id, name, document) VALUES (?, ?, ?)"
                " ON CONFLICT (key_id, name) DO UPDATE SET document = excluded.document",
                (record.key_id, name, document),
            )

    # --- grants -------------------------------------------------------------------------

    def create_grant(self, key_ref: str, terms: GrantTerms) -> Grant:
        rules.check_grant(terms)
        grant_id, token = secrets.token_hex(32), secrets.token_urlsafe(48)
        with self._write() as db:
            record = self._resolve(key_ref)
            rules.require_manageable(record.key_id, record.state)
            if terms.name:  # AWS: a retry with the same Name and identical terms returns the grant made first
                row = db.execute(
                    "SELECT * FROM grants WHERE key_id = ? AND terms = ?", (record.key_id, _terms_json(terms))
                ).fetchone()
                if row is not None:
                    return _grant(row)
            (count,) = db.execute("SELECT COUNT(*) FROM grants WHERE key_id = ?", (record.key_id,)).fetchone()
            if count >= rules.MAX_GRANTS_PER_KEY:
                raise LimitExceeded(f"key {record.key_id} already has {count} grants, the limit")
            now = self._clock()
            db.execute(
                "INSERT INTO grants (grant_id, key_id, token, created_at, terms) VALUES (?, ?, ?, ?, ?)",
                (grant_id, record.key_id, token, now, _terms_json(terms)),
            )
        return Grant(grant_id, record.key_id, datetime.fromtimestamp(now, UTC), terms, token)

    def list_grants(self, key_ref: str | None = None, *, retiring: str = "") -> list[Grant]:
        with self._read():
            if key_ref is None:
                rows = self._db.execute("SELECT * FROM grants ORDER BY created_at, grant_id").fetchall()
            else:
                key_id = self._resolve(key_ref).key_id
                rows = self._db.execute(
                    "SELECT * FROM grants WHERE key_id = ? ORDER BY created_at, grant_id", (key_id,)
                ).fetchall()
        grants = [_grant(row) for row in rows]
        return [grant for grant in grants if not retiring or grant.terms.retiring == retiring]

    def find_grant(self, *, token: str = "", key_ref: str = "", grant_id: str = "") -> Grant:
        with self._read():
            if token:
                row = self._db.execute("SELECT * FROM grants WHERE token = ?", (token,)).fetchone()
            else:
                key_id = self._resolve(key_ref).key_id
                row = self._db.execute(
                    "SELECT * FROM grants WHERE key_id = ? AND grant_id = ?", (key_id, grant_id)
                ).fetchone()
        if row is None:
            raise NotFound("no such grant")  # neither the token nor the id is quoted back
        return _grant(row)

    def delete_grant(self, key_ref: str, grant_id: str) -> None:
        with self._write() as db:
            key_id = self._resolve(key_ref).key_id
            if db.execute("DELETE FROM grants WHERE key_id = ? AND grant_id = ?", (key_id, grant_id)).rowcount == 0:
                raise NotFound(f"key {key_id} has no grant {grant_id[:80]!r}")

    # --- account ------------------------------------------------------------------------

    def instance_count(self) -> int:
        with self._read():
            (count,) = self._db.execute(
                "SELECT COUNT(*) FROM keys WHERE state != ?", (KeyState.DESTROYED.value,)
            ).fetchone()
        return int(count)

    def quotas(self) -> list[Quota]:
        return [Quota(resource="CMK", used=self.instance_count(), limit=self._cmk_limit)]
