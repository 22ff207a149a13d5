"""Rate limit of failed console sign-ins, per client address and per access key, for the whole server.

A client or an access key with too many failures inside the window is refused without its
secret being checked until the oldest of those failures leaves the window. Failures are rows
in the console's database (:mod:`.database`), so N worker processes or replicas allow no more
than one would. The table stays small: failures older than the window are deleted at every
new failure, and past ``capacity`` rows the oldest go. An access key is kept as its SHA-256: the
throttle only compares them, and a secret typed into the access-key field must not be written down.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from kubekms.server.console.database import ConsoleDatabase, Statements

WINDOW_SECONDS = 300.0
FAILURES_PER_ACCESS_KEY = 5
FAILURES_PER_CLIENT = 20
CAPACITY = 10_000  # rows (two per failure), at most ~1 MB
SCHEMA = """
CREATE TABLE IF NOT EXISTS console_failure (kind TEXT NOT NULL, name TEXT NOT NULL, at DOUBLE PRECISION NOT NULL);
CREATE INDEX IF NOT EXISTS console_failure_by_name ON console_failure (kind, name, at);
CREATE INDEX IF NOT EXISTS console_failure_by_time ON console_failure (at);
"""
CLIENT, ACCESS_KEY = "client", "access-key"


def _access_key_name(access_key: str) -> str:
    """How a failure names its access key: a digest (the field may hold a mistyped secret)."""
    return hashlib.sha256(access_key.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Limit:
    failures: int
    window_seconds: float


CLIENT_LIMIT = Limit(FAILURES_PER_CLIENT, WINDOW_SECONDS)
ACCESS_KEY_LIMIT = Limit(FAILURES_PER_ACCESS_KEY, WINDOW_SECONDS)


class SignInThrottle:
    def __init__(
        self,
        db: ConsoleDatabase,
        *,
        per_client: Limit = CLIENT_LIMIT,
        per_access_key: Limit = ACCESS_KEY_LIMIT,
        clock: Callable[[], float] = time.time,
        capacity: int = CAPACITY,
    ) -> None:
        self._db = db
        db.create(SCHEMA)
        self._limits = {CLIENT: per_client, ACCESS_KEY: per_access_key}
        self._clock = clock
        self._capacity = capacity

    def _wait(self, db: Statements, kind: str, name: str, now: float) -> float:
        limit = self._limits[kind]
        rows = db.execute(
            "SELECT at FROM console_failure WHERE kind = ? AND name = ? AND at > ? ORDER BY at DESC LIMIT ?",
            (kind, name, now - limit.window_seconds, limit.failures),
        ).fetchall()
        if len(rows) < limit.failures:
            return 0.0
        return max(float(rows[-1][0]) + limit.window_seconds - now, 0.001)

    def _waiting(self, db: Statements, client: str, access_key: str, now: float) -> float:
        access_key_name = _access_key_name(access_key)
        return max(self._wait(db, CLIENT, client, now), self._wait(db, ACCESS_KEY, access_key_name, now))

    def retry_after(self, client: str, access_key: str) -> float:
        """Seconds until this client may try this access key again; 0 when it may now."""
        now = self._clock()
        with self._db.reading() as db:
            return self._waiting(db, client, access_key, now)

    def attempt(self, client: str, access_key: str) -> float:
        """Seconds to wait, or 0 once this attempt is recorded as a failure (until :meth:`succeeded` clears it).

        Check and record are one write transaction: a burst of concurrent attempts, in any worker or
        replica, gets no more secret checks than the limit (checked, then recorded, it got 16 of 40).
        """
        now = self._clock()
        with self._db.transaction() as db:
            wait = self._waiting(db, client, access_key, now)
            if not wait:
                self._record(db, client, access_key, now)
        return wait

    def failed(self, client: str, access_key: str) -> None:
        with self._db.transaction() as db:
            self._record(db, client, access_key, self._clock())

    def _record(self, db: Statements, client: str, access_key: str, now: float) -> None:
        horizon = now - max(limit.window_seconds for limit in self._limits.values())
        db.execute("DELETE FROM console_failure WHERE at <= ?", (horizon,))
        for kind, name in ((CLIENT, client), (ACCESS_KEY, _access_key_name(access_key))):
            db.execute("INSERT INTO console_failure (kind, name, at) VALUES (?, ?, ?)", (kind, name, now))
        db.execute(  # past capacity, the oldest failures go
            "DELETE FROM console_failure WHERE at < (SELECT at FROM console_failure ORDER BY at DESC LIMIT 1 OFFSET ?)",
            (self._capacity,),
        )

    def succeeded(self, client: str, access_key: str) -> None:
        """After :meth:`attempt`: the access key's failures are cleared, and the client's newest one (this
        attempt's); the client's others stay (one good key does not vouch for others)."""
        with self._db.transaction() as db:
            db.execute(
                "DELETE FROM console_failure WHERE kind = ? AND name = ?", (ACCESS_KEY, _access_key_name(access_key))
            )
            db.execute(
                "DELETE FROM console_failure WHERE kind = ? AND name = ? AND at ="
                " (SELECT MAX(at) FROM console_failure WHERE kind = ? AND name = ?)",
                (CLIENT, client, CLIENT, client),
            )
