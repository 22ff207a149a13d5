"""One PostgreSQL pool serves every project of a process, counted by its users: a keystore closed twice
(as a SQLite keystore may be, its close is idempotent) must not give the pool back twice, closing it under
the other projects (every call of theirs then failing) or failing on a pool already gone."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "keystore_pg"))
from race_support import fresh_database

from kubekms.devenv import postgres
from kubekms.keystore import Keystore


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    with postgres.postgres() as server, fresh_database(server) as url:
        yield url


def test_a_keystore_closed_twice_leaves_the_shared_pool_to_the_others(database_url: str, tmp_path: Path) -> None:
    closed_twice = Keystore(tmp_path / "alpha", init=True, database_url=database_url)
    other = Keystore(tmp_path / "beta", init=True, database_url=database_url)
    try:
        closed_twice.close()
        closed_twice.close()
        assert other.describe_key(other.create_key("still-served").key_id).description == ""
    finally:
        other.close()
    other.close()  # the last user: nothing left to give back, no error
