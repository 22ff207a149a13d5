"""What is PostgreSQL's own: sealing in the database, schema versions, concurrent writer processes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from replicas_support import drop_connections

from kubekms.backend import KeyState
from kubekms.devenv.pki import generate_pki
from kubekms.devenv.postgres import Postgres
from kubekms.keystore import Keystore, KeystoreSetupError, rules
from kubekms.keystore.pg_schema import SCHEMA_VERSION


def test_root_key_and_material_are_not_in_the_database(tmp_path: Path, database_url: str, pg_server: Postgres) -> None:
    store = Keystore(tmp_path / "proj", init=True, database_url=database_url)
    key = store.create_key("sealed")
    store.rotate_key(key.key_id)
    data_key = store.create_data_key(key.key_id)
    store.close()
    root_key = (tmp_path / "proj" / "root.key").read_bytes()
    name = urlsplit(database_url).path.lstrip("/")
    dump = pg_server.dump_database(name)
    assert key.key_id.encode() in dump  # the dump does hold this keystore's rows
    for secret in (root_key, data_key.plaintext or b""):
        assert secret not in dump
        assert secret.hex().encode() not in dump  # bytea is dumped as hex
    with psycopg.connect(database_url) as connection:
        rows = connection.execute("SELECT sealed FROM proj.key_versions WHERE key_id = %s", (key.key_id,)).fetchall()
    assert [len(sealed) for (sealed,) in rows] == [12 + 32 + 16] * 2  # nonce + material + tag: sealed, not raw


def test_schema_is_versioned_and_a_newer_one_refused(tmp_path: Path, database_url: str) -> None:
    Keystore(tmp_path / "proj", init=True, database_url=database_url).close()
    with psycopg.connect(database_url, autocommit=True) as connection:
        assert connection.execute("SELECT version FROM proj.schema_version").fetchall() == [(SCHEMA_VERSION,)]
        connection.execute("UPDATE proj.schema_version SET version = %s", (SCHEMA_VERSION + 1,))
    with pytest.raises(RuntimeError, match="newer"):
        Keystore(tmp_path / "proj", database_url=database_url)


def test_the_connection_is_tls_with_the_server_verified(tmp_path: Path, database_url: str, pg_server: Postgres) -> None:
    store = Keystore(tmp_path / "proj", init=True, database_url=database_url)
    store.create_key("over-tls")
    with psycopg.connect(database_url) as connection:
        pool = connection.execute(
            "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)"
            " WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()"
        ).fetchall()
    store.close()
    assert pool and all(ssl for (ssl,) in pool)  # the keystore's pooled connections
    foreign_ca = generate_pki(tmp_path / "foreign").ca_cert
    with pytest.raises(KeystoreSetupError, match="SSL error"):  # the foreign CA does not sign its certificate
        Keystore(tmp_path / "proj", database_url=database_url.replace(str(pg_server.ca_cert), str(foreign_ca)))


def test_calls_after_the_pools_sessions_were_terminated_succeed(tmp_path: Path, database_url: str) -> None:
    """No probe on checkout: the counter read that opens a call finds the cut connection, and the call is retried."""
    store = Keystore(tmp_path / "proj", init=True, database_url=database_url)
    key = store.create_key("survives")
    data_key = store.create_data_key(key.key_id)  # cached: the next read's only statement is the counter read
    with psycopg.connect(database_url, autocommit=True) as admin:
        assert drop_connections(admin, database_url) >= 1
        assert store.decrypt_data_key(key.key_id, data_key.ciphertext) == data_key.plaintext
        assert drop_connections(admin, database_url) >= 1
        assert store.create_key("after-the-cut").state is KeyState.ENABLED  # a write transaction too
    store.close()


def test_projects_are_separate_schemas(tmp_path: Path, database_url: str) -> None:
    first = Keystore(tmp_path / "first", init=True, database_url=database_url)
    second = Keystore(tmp_path / "second", init=True, database_url=database_url)
    first.create_key("same-alias")
    second.create_key("same-alias")  # an alias is unique per project, as with one SQLite file each
    assert (first.list_keys().total, second.list_keys().total) == (1, 1)
    first.close()
    second.close()


# --- several processes writing the same key -----------------------------------------------

_ROUNDS = 25
_WRITERS = 3
_WRITER = """
import json, sys
from pathlib import Path
from kubekms.errors import AlreadyExists, Disabled, InvalidState, LimitExceeded, NotFound
from kubekms.keystore import Keystore
store = Keystore(Path(sys.argv[1]), database_url=sys.argv[2])
key_id, rounds = sys.argv[3], int(sys.argv[4])
done = {"rotations": 0, "disabled": 0, "enabled": 0, "aliases": [], "deleted": [], "scheduled": 0}
print("ready", flush=True)
sys.stdin.readline()  # the start line: every writer begins at once
for i in range(rounds):
    try:
        store.rotate_key(key_id)
        done["rotations"] += 1
    except (Disabled, LimitExceeded):  # LimitExceeded: the on-demand quota (rules.ON_DEMAND_ROTATIONS)
        pass
    for name, action in (("disabled", store.disable_key), ("enabled", store.enable_key)):
        try:
            action(key_id)
            done[name] += 1
        except InvalidState:
            pass
    try:
        store.create_alias(key_id, f"race-{i}")
        done["aliases"].append(f"race-{i}")
    except AlreadyExists:
        pass
    try:
        store.delete_alias(key_id, f"race-{i - 1}")
        done["deleted"].append(f"race-{i - 1}")
    except NotFound:
        pass
print("looped", flush=True)
sys.stdin.readline()  # the second start line: every writer tries to schedule the deletion at once
try:
    store.schedule_key_deletion(key_id, 7)
    done["scheduled"] += 1
except InvalidState:
    pass
print(json.dumps(done), flush=True)
"""


def test_writer_processes_racing_on_one_key_keep_the_invariants(tmp_path: Path, database_url: str) -> None:
    directory = tmp_path / "proj"
    store = Keystore(directory, init=True, database_url=database_url)
    key = store.create_key("raced")
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(directory), database_url, key.key_id, str(_ROUNDS)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(_WRITERS)
    ]
    try:
        for phase in ("ready", "looped"):
            for writer in writers:  # blocks until each reached the phase (no sleep)
                assert writer.stdout is not None and writer.stdout.readline().strip() == phase
            for writer in writers:
                assert writer.stdin is not None
                writer.stdin.write("go\n")
                writer.stdin.flush()
        reports = [json.loads(writer.communicate(timeout=120)[0]) for writer in writers]
    finally:
        for writer in writers:
            writer.kill()
    assert all(writer.returncode == 0 for writer in writers)
    final = store.describe_key(key.key_id)
    rotations = sum(report["rotations"] for report in reports)
    assert 0 < rotations <= rules.ON_DEMAND_ROTATIONS  # the quota holds under the race too
    # no lost update of the version: every acknowledged rotation made exactly one version
    assert (final.current_version, store.get_rotation_status(key.key_id).number_of_rotations) == (
        rotations + 1,
        rotations,
    )
    with psycopg.connect(database_url) as connection:
        versions = connection.execute("SELECT version FROM proj.key_versions WHERE key_id = %s ORDER BY version",
                                      (key.key_id,)).fetchall()  # fmt: skip
    assert [v for (v,) in versions] == list(range(1, rotations + 2))
    # no lost update of the state: each acknowledged disable was undone by one acknowledged enable
    disabled, enabled = sum(r["disabled"] for r in reports), sum(r["enabled"] for r in reports)
    assert disabled == enabled and disabled > 0
    # and exactly one writer scheduled the deletion (the others saw it pending)
    assert sum(r["scheduled"] for r in reports) == 1
    assert final.state is KeyState.PENDING_DELETION and final.deletion_date is not None
    # no duplicate alias: a name's acknowledged creations and deletions alternate (a slow writer
    # may create one again after another deleted it), so what is left is their difference
    created = [alias for r in reports for alias in r["aliases"]]
    deleted = [alias for r in reports for alias in r["deleted"]]
    names = {f"race-{i}" for i in range(_ROUNDS)}
    assert set(created) == names
    left = {name for name in names if created.count(name) - deleted.count(name) == 1}
    assert all(created.count(name) - deleted.count(name) in (0, 1) for name in names)
    assert set(final.aliases) == {"raced", *left}
    store.close()
