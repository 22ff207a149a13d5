"""A real PostgreSQL 15 for the session, and a fresh database per test."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import psycopg
import pytest

from kubekms.devenv import postgres

_numbers = itertools.count()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[postgres.Postgres]:
    with postgres.postgres() as server:
        yield server


@pytest.fixture
def database_url(pg_server: postgres.Postgres) -> str:
    """Overrides the unit tests' fixture: the keystore lives in its own PostgreSQL database."""
    name = f"test_{next(_numbers)}"
    with psycopg.connect(pg_server.url, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")  # our own counter, not input
    return pg_server.database_url(name)
