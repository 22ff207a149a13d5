"""The keystore's SQLite schema, versioned by ``PRAGMA user_version`` with forward migrations."""

from __future__ import annotations

import sqlite3

# Each entry migrates from version i to i + 1. Never edit a released entry; append.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
    CREATE TABLE keys (
        key_id TEXT PRIMARY KEY,
        alias TEXT NOT NULL,
        description TEXT NOT NULL,
        key_spec TEXT NOT NULL,
        key_usage TEXT NOT NULL,
        origin TEXT NOT NULL,
        state TEXT NOT NULL,
        created_at REAL NOT NULL,
        current_version INTEGER NOT NULL,
        rotation_enabled INTEGER NOT NULL DEFAULT 0,
        rotation_interval_days INTEGER NOT NULL,
        last_rotation_at REAL,
        number_of_rotations INTEGER NOT NULL DEFAULT 0,
        deletion_date REAL
    );
    CREATE INDEX keys_by_creation ON keys (created_at);
    CREATE TABLE key_versions (
        key_id TEXT NOT NULL REFERENCES keys (key_id),
        version INTEGER NOT NULL,
        sealed BLOB,
        created_at REAL NOT NULL,
        PRIMARY KEY (key_id, version)
    );
    CREATE TABLE aliases (alias TEXT PRIMARY KEY, key_id TEXT NOT NULL REFERENCES keys (key_id));
    CREATE INDEX aliases_by_key ON aliases (key_id);
    CREATE TABLE tags (
        key_id TEXT NOT NULL REFERENCES keys (key_id),
        tag_key TEXT NOT NULL,
        tag_value TEXT NOT NULL,
        PRIMARY KEY (key_id, tag_key)
    );
    CREATE INDEX tags_by_pair ON tags (tag_key, tag_value);
    """,
    # 2: one version of a key can be disabled (as on Google Cloud KMS), e.g. once re-encryption
    # moved everything off it; a disabled version refuses to decrypt.
    """
    ALTER TABLE key_versions ADD COLUMN enabled INTEGER NOT NULL DEFAULT 1;
    """,
    # 3: a key's own policy document (AWS's grammar); a key without a row has the default policy.
    """
    CREATE TABLE key_policies (
        key_id TEXT NOT NULL REFERENCES keys (key_id),
        name TEXT NOT NULL,
        document TEXT NOT NULL,
        PRIMARY KEY (key_id, name)
    );
    """,
    # 4: grants (AWS's): ``terms`` is the JSON of GrantTerms (grantee, operations, constraints, ...).
    """
    CREATE TABLE grants (
        grant_id TEXT PRIMARY KEY,
        key_id TEXT NOT NULL REFERENCES keys (key_id),
        token TEXT NOT NULL UNIQUE,
        created_at REAL NOT NULL,
        terms TEXT NOT NULL
    );
    CREATE INDEX grants_by_key ON grants (key_id, created_at);
    """,
    # 5: imported key material (origin "external"): when it expires, a digest that a re-import must match, and
    # the RSA wrapping keys (sealed) that GetParametersForImport handed out, each named by its import token's hash.
    """
    ALTER TABLE keys ADD COLUMN material_expires_at REAL;
    ALTER TABLE keys ADD COLUMN material_digest TEXT;
    CREATE TABLE import_tokens (
        token_hash TEXT PRIMARY KEY,
        key_id TEXT NOT NULL REFERENCES keys (key_id),
        algorithm TEXT NOT NULL,
        wrapping_key BLOB NOT NULL,
        expires_at REAL NOT NULL
    );
    CREATE INDEX import_tokens_by_expiry ON import_tokens (expires_at);
    """,
    # 6: the AWS region a key was created in through the AWS wire; '' for keys of the other wires (and older keys),
    # which belong to no region and are seen from every region.
    """
    ALTER TABLE keys ADD COLUMN region TEXT NOT NULL DEFAULT '';
    """,
    # 7: whether a version came from an on-demand rotation (their number per key is limited, as AWS's 25);
    # versions made before are counted as automatic.
    """
    ALTER TABLE key_versions ADD COLUMN on_demand INTEGER NOT NULL DEFAULT 0;
    """,
    # 8: several imported materials per key (AWS's ImportType NEW_KEY_MATERIAL): each material (a key version)
    # keeps the digest a re-import of it must match, and new material waits as pending (PENDING_ROTATION) until an
    # on-demand rotation makes it current. A key's one material so far is its version 1. (Written to run again
    # over its own result: the tests rebuild old schemas from this one.)
    """
    CREATE TABLE IF NOT EXISTS imported_materials (
        key_id TEXT NOT NULL REFERENCES keys (key_id),
        version INTEGER NOT NULL,
        digest TEXT NOT NULL,
        pending INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (key_id, version)
    );
    INSERT OR IGNORE INTO imported_materials (key_id, version, digest)
        SELECT key_id, 1, material_digest FROM keys WHERE material_digest IS NOT NULL;
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)


def migrate(connection: sqlite3.Connection) -> None:
    """Bring the database to SCHEMA_VERSION; refuse a database newer than this code."""
    (current,) = connection.execute("PRAGMA user_version").fetchone()
    if current > SCHEMA_VERSION:
        raise RuntimeError(f"keystore schema version {current} is newer than this kubekms ({SCHEMA_VERSION})")
    for version in range(current, SCHEMA_VERSION):
        connection.execute("BEGIN IMMEDIATE")
        try:
            (again,) = connection.execute("PRAGMA user_version").fetchone()
            if again == version:  # another process may have migrated meanwhile
                for statement in MIGRATIONS[version].split(";"):
                    if statement.strip():
                        connection.execute(statement)
                connection.execute(f"PRAGMA user_version = {version + 1}")
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
