"""The keystore's PostgreSQL schema, one schema per project, versioned by its ``schema_version`` row."""

from __future__ import annotations

# Each entry migrates from version i to i + 1. Never edit a released entry; append.
# Version 1 is the SQLite schema at its version 2 (same tables and columns), plus
# ``keys.seq`` (insertion order, SQLite's rowid) and ``changes`` (the data version).
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE meta (name TEXT PRIMARY KEY, value BYTEA NOT NULL);
    CREATE TABLE keys (
        key_id TEXT PRIMARY KEY,
        seq BIGSERIAL NOT NULL,
        alias TEXT NOT NULL,
        description TEXT NOT NULL,
        key_spec TEXT NOT NULL,
        key_usage TEXT NOT NULL,
        origin TEXT NOT NULL,
        state TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        current_version INTEGER NOT NULL,
        rotation_enabled INTEGER NOT NULL DEFAULT 0,
        rotation_interval_days INTEGER NOT NULL,
        last_rotation_at DOUBLE PRECISION,
        number_of_rotations INTEGER NOT NULL DEFAULT 0,
        deletion_date DOUBLE PRECISION
    );
    CREATE INDEX keys_by_creation ON keys (created_at, seq);
    CREATE TABLE key_versions (
        key_id TEXT NOT NULL REFERENCES keys (key_id),
        version INTEGER NOT NULL,
        sealed BYTEA,
        created_at DOUBLE PRECISION NOT NULL,
        enabled INTEGER NOT NULL DEFAULT 1,
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
    CREATE TABLE changes (id INTEGER PRIMARY KEY CHECK (id = 1), counter BIGINT NOT NULL);
    INSERT INTO changes (id, counter) VALUES (1, 0);
    """,
    # 2: the SQLite schema's version 3: a key's own policy document.
    """
    CREATE TABLE key_policies (
        key_id TEXT NOT NULL REFERENCES keys (key_id),
        name TEXT NOT NULL,
        document TEXT NOT NULL,
        PRIMARY KEY (key_id, name)
    );
    """,
    # 3: the SQLite schema's version 4: grants.
    """
    CREATE TABLE grants (
        grant_id TEXT PRIMARY KEY,
        key_id TEXT NOT NULL REFERENCES keys (key_id),
        token TEXT NOT NULL UNIQUE,
        created_at DOUBLE PRECISION NOT NULL,
        terms TEXT NOT NULL
    );
    CREATE INDEX grants_by_key ON grants (key_id, created_at);
    """,
    # 4: the SQLite schema's version 5: imported key material.
    """
    ALTER TABLE keys ADD COLUMN material_expires_at DOUBLE PRECISION;
    ALTER TABLE keys ADD COLUMN material_digest TEXT;
    CREATE TABLE import_tokens (
        token_hash TEXT PRIMARY KEY,
        key_id TEXT NOT NULL REFERENCES keys (key_id),
        algorithm TEXT NOT NULL,
        wrapping_key BYTEA NOT NULL,
        expires_at DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX import_tokens_by_expiry ON import_tokens (expires_at);
    """,
    # 5: the SQLite schema's version 6: the AWS region of a key ('' for none).
    """
    ALTER TABLE keys ADD COLUMN region TEXT NOT NULL DEFAULT '';
    """,
    # 6: the SQLite schema's version 7: versions made by on-demand rotations.
    """
    ALTER TABLE key_versions ADD COLUMN on_demand INTEGER NOT NULL DEFAULT 0;
    """,
    # 7: the SQLite schema's version 8: a digest per imported material, and new material pending rotation.
    """
    CREATE TABLE IF NOT EXISTS imported_materials (
        key_id TEXT NOT NULL REFERENCES keys (key_id),
        version INTEGER NOT NULL,
        digest TEXT NOT NULL,
        pending INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (key_id, version)
    );
    INSERT INTO imported_materials (key_id, version, digest)
        SELECT key_id, 1, material_digest FROM keys WHERE material_digest IS NOT NULL
        ON CONFLICT DO NOTHING;
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)
