"""A secret typed into the sign-in form's access-key field must not be kept in the console's database.

The sign-in throttle counts failures per access key as rows of the console's database (the state dir's
console-sessions.db, or the shared PostgreSQL database), and it stored the access key exactly as typed. A secret
pasted or autofilled into the wrong field (a common slip) was written there in clear text, and stayed until a later
failure swept the window (with no later failure, for good). The throttle only compares access keys, so it now keeps
their SHA-256 instead; the failures still count per access key.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "console"))
from console_harness import ConsoleHttp, credentials, start_server

from kubekms.server.console.database import SqliteConsoleDatabase
from kubekms.server.console.throttle import Limit, SignInThrottle


def test_a_secret_typed_as_the_access_key_is_not_written_to_the_console_database(tmp_path: Path) -> None:
    server = start_server(tmp_path / "state")
    try:
        access_key, secret_key = credentials(server, "admin")
        slip = ConsoleHttp(server.endpoint).sign_in(secret_key, secret_key)  # the secret in both fields
        assert slip.status_code == 401
        files = sorted((tmp_path / "state").rglob("console-sessions.db*"))
        assert files  # the database the throttle writes to
        assert not any(secret_key.encode() in path.read_bytes() for path in files)
        assert ConsoleHttp(server.endpoint).sign_in(access_key, secret_key).status_code == 303  # and signing in works
    finally:
        server.stop()


def test_failures_still_count_per_access_key(tmp_path: Path) -> None:
    throttle = SignInThrottle(SqliteConsoleDatabase(tmp_path / "t.db"), per_access_key=Limit(2, 100))
    assert throttle.attempt("10.0.0.1", "AK1") == 0 and throttle.attempt("10.0.0.2", "AK1") == 0
    assert throttle.attempt("10.0.0.3", "AK1") > 0  # two failures of AK1 from anywhere: the third is refused
    assert throttle.attempt("10.0.0.3", "AK2") == 0  # another key is not
    throttle.succeeded("10.0.0.2", "AK1")
    assert throttle.retry_after("10.0.0.4", "AK1") == 0
    assert b"AK1" not in b"".join(path.read_bytes() for path in tmp_path.iterdir())
