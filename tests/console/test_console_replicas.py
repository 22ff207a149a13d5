"""The console on two server replicas sharing one PostgreSQL database (as the chart runs them).

Each replica has a state dir of its own: sessions are shared through the database, so a session
made on one replica is used and ended on the other.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from console_harness import ConsoleHttp, credentials

from kubekms.devenv import postgres

sys.path.append(str(Path(__file__).resolve().parents[1] / "keystore_pg"))  # the replicas' launcher, after all else
from replicas_support import PROJECT, replicas

COOKIE = "kubekms-console"


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    with postgres.postgres() as server:
        with psycopg.connect(server.url, autocommit=True) as connection:
            connection.execute("CREATE DATABASE console_replicas")
        yield server.database_url("console_replicas")


def test_a_session_made_on_one_replica_is_used_and_ended_on_the_other(tmp_path: Path, database_url: str) -> None:
    with replicas(tmp_path, database_url, count=2) as (first, second):
        on_first = ConsoleHttp.signed_in(first.endpoint, *credentials(first, "admin"))
        token = on_first.session.cookies[COOKIE]
        assert token
        on_second = ConsoleHttp(second.endpoint)
        on_second.session.cookies.set(COOKIE, token)
        page = on_second.get(f"/console/p/{PROJECT}/keys")
        assert page.status_code == 200 and "Signed in as" in page.text

        signed_out = on_second.post("/console/sign-out", data={"csrf": on_second.csrf()})
        assert signed_out.status_code == 303
        refused = on_first.get(f"/console/p/{PROJECT}/keys")
        assert refused.status_code == 303 and refused.headers["Location"] == "/console/sign-in?ended=1"
        assert not (first.state_dir / "keystore" / "console-sessions.db").exists()  # not in the state dir
