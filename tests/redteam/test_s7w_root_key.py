"""A root key made on demand for a project whose keystore already exists under another root key.

With a shared database, the second replica to open a new project made its own root key, failed the root
check for ever (its stray root.key stayed on disk, so the next open no longer made one) and answered 500.
Now the key just made is removed and the project refused with a precise AccessDenied (h6-findings #1);
a root key that was already there is never removed.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "keystore_pg"))
from race_support import fresh_database

from kubekms.devenv import postgres
from kubekms.errors import AccessDenied, Reason
from kubekms.keystore import Keystore, KeystoreSetupError
from kubekms.keystore.rootkey import RootKeyNotInstalled


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    with postgres.postgres() as server, fresh_database(server) as url:
        yield url


def test_the_second_replica_to_open_a_project_removes_the_root_key_it_made(database_url: str, tmp_path: Path) -> None:
    first = Keystore(tmp_path / "replica-0" / "tenant", init=True, database_url=database_url)
    try:
        key_id = first.create_key("made-on-the-first").key_id
        second = tmp_path / "replica-1" / "tenant"
        for _ in range(2):  # and again at its next request: refused the same way, never a stray key
            with pytest.raises(RootKeyNotInstalled, match="'tenant' is not served by this server") as refused:
                Keystore(second, init=True, database_url=database_url)
            assert isinstance(refused.value, AccessDenied) and refused.value.reason is Reason.PROJECT_DENIED
            assert not second.exists()
        assert first.describe_key(key_id).key_id == key_id  # the first replica's keystore is untouched
    finally:
        first.close()


def test_a_root_key_already_installed_is_kept_when_it_does_not_match(tmp_path: Path) -> None:
    directory = tmp_path / "project"
    Keystore(directory, init=True).close()
    root_key = directory / "root.key"
    wrong = bytes(32)
    root_key.write_bytes(wrong)  # an operator's mistake: it must stay for them to see and fix
    with pytest.raises(KeystoreSetupError, match="does not open with this root key") as refused:
        Keystore(directory, init=True)
    assert not isinstance(refused.value, RootKeyNotInstalled)
    assert root_key.read_bytes() == wrong


def test_a_root_key_made_for_a_keystore_that_lost_its_own_is_removed(tmp_path: Path) -> None:
    directory = tmp_path / "project"
    Keystore(directory, init=True).close()
    (directory / "root.key").unlink()
    with pytest.raises(RootKeyNotInstalled):
        Keystore(directory, init=True)
    assert not (directory / "root.key").exists()
    assert (directory / "keystore.db").exists()  # the directory was there before: it stays, with its data
