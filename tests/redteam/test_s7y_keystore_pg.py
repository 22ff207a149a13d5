"""The PostgreSQL keystore shared by the projects of a process, and by replicas.

A replica opening a project another replica made, while the shared database fails for a moment: the root key
used to be made before the database was opened, so a database error left that key on disk, and the next open
(the directory now existing, so no longer "made here") failed the root check with the key kept, for ever: a
500 at each request, and the server refused to start (it opens every project on disk at start). Now a shared
database is read before any root key is made: the project another replica made is refused with nothing
written, and an open that fails leaves no key behind.

One pool serves every project of a process, counted by its users: a keystore closed twice (as a SQLite
keystore may be, its close is idempotent) must not give the pool back twice, closing it under the other
projects or failing on a pool already gone.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "keystore_pg"))
from race_support import fresh_database

from kubekms.devenv import postgres
from kubekms.keystore import Keystore, KeystoreSetupError
from kubekms.keystore.rootkey import RootKeyNotInstalled


@pytest.fixture(scope="module")
def server() -> Iterator[postgres.Postgres]:
    with postgres.postgres() as running:
        yield running


def test_a_database_failure_on_a_new_projects_open_leaves_no_root_key(server: postgres.Postgres,
                                                                        tmp_path: Path) -> None:  # fmt: skip
    with fresh_database(server) as url:
        first = Keystore(tmp_path / "replica-0" / "tenant", init=True, database_url=url)
        try:
            key_id = first.create_key("made-on-the-first").key_id
            second = tmp_path / "replica-1" / "tenant"
            unreachable = server.database_url("not_there_yet")  # a real refusal by the server, as in an outage
            with pytest.raises(KeystoreSetupError, match="cannot connect"):
                Keystore(second, init=True, database_url=unreachable)
            assert not (second / "root.key").exists()
            # the server's next open of the project (kubekms.server.app: init when the directory is missing)
            with pytest.raises(RootKeyNotInstalled, match="'tenant' is not served by this server"):
                Keystore(second, init=not second.exists(), database_url=url)
            assert not (second / "root.key").exists()
            assert first.describe_key(key_id).key_id == key_id
        finally:
            first.close()


def test_a_project_another_replica_made_is_refused_before_any_root_key_is_made(server: postgres.Postgres,
                                                                               tmp_path: Path) -> None:  # fmt: skip
    with fresh_database(server) as url:
        Keystore(tmp_path / "replica-0" / "tenant", init=True, database_url=url).close()
        second = tmp_path / "replica-1" / "tenant"
        second.mkdir(parents=True)  # the directory is there (another project's files may be too): kept
        with pytest.raises(RootKeyNotInstalled):
            Keystore(second, init=True, database_url=url)
        assert second.is_dir() and not (second / "root.key").exists()


def test_a_keystore_closed_twice_leaves_the_shared_pool_to_the_others(server: postgres.Postgres,
                                                                       tmp_path: Path) -> None:  # fmt: skip
    with fresh_database(server) as url:
        closed_twice = Keystore(tmp_path / "alpha", init=True, database_url=url)
        other = Keystore(tmp_path / "beta", init=True, database_url=url)
        try:
            closed_twice.close()
            closed_twice.close()
            assert other.describe_key(other.create_key("still-served").key_id).description == ""
        finally:
            other.close()
        other.close()  # the last user: nothing left to give back, no error
