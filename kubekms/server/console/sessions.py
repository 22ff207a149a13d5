"""Signed-in console sessions, shared by every process serving the console (:mod:`.database`).

The cookie carries a random token (256 bits); the table holds only its SHA-256, so the
database holds nothing a browser could present. The form's CSRF token is an HMAC of the cookie
token, computed again on each request, never stored. A session ends at a fixed wall-clock time
after sign-in (the same clock for every process; no sliding renewal) and on sign-out, which
deletes its row: the next request on any process finds no session. A full store ends the oldest
sessions of the access key holding the most: one principal signing in over and over cannot sign
the others out. Notices ("Key x created.") wait in the database for the next page, whichever
process serves it.

Calls block on the database: the console runs them in a worker thread.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from kubekms.server.console.database import ConsoleDatabase, Statements

MAX_SESSIONS = 5_000  # at most ~0.8 MB of rows
MAX_NOTICES = 10  # waiting for one page; more are dropped
_CSRF_CONTEXT = b"kubekms-console-csrf"
SCHEMA = """
CREATE TABLE IF NOT EXISTS console_session (
    digest TEXT PRIMARY KEY,
    access_key TEXT NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX IF NOT EXISTS console_session_by_expiry ON console_session (expires_at);
CREATE TABLE IF NOT EXISTS console_notice (digest TEXT NOT NULL, at DOUBLE PRECISION NOT NULL, notice TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS console_notice_by_session ON console_notice (digest, at);
"""


@dataclass(frozen=True)
class Session:
    digest: str
    access_key: str
    csrf_token: str
    expires_at: float  # on the store's clock (wall-clock seconds)
    notices: tuple[str, ...] = ()  # taken from the store for the page being served


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _csrf_token(token: str) -> str:
    mac = hmac.new(token.encode("utf-8", "surrogatepass"), _CSRF_CONTEXT, hashlib.sha256)
    return mac.hexdigest()


class SessionStore:
    def __init__(
        self,
        db: ConsoleDatabase,
        lifetime_seconds: float,
        *,
        clock: Callable[[], float] = time.time,
        capacity: int = MAX_SESSIONS,
    ) -> None:
        self.lifetime_seconds = lifetime_seconds
        self._db = db
        self._clock = clock
        self._capacity = capacity
        db.create(SCHEMA)

    def open(self, access_key: str) -> tuple[str, Session]:
        """A new session for ``access_key``: (cookie token, session)."""
        token = secrets.token_urlsafe(32)
        now = self._clock()
        session = Session(_digest(token), access_key, _csrf_token(token), now + self.lifetime_seconds)
        with self._db.transaction() as db:
            db.execute("DELETE FROM console_session WHERE expires_at <= ?", (now,))
            db.execute("DELETE FROM console_notice WHERE digest NOT IN (SELECT digest FROM console_session)")
            (count,) = db.execute("SELECT COUNT(*) FROM console_session").fetchone()
            if count >= self._capacity:
                # the oldest sessions of the access key holding the most (this new one counted) go: signing in
                # over and over (a success is not throttled) ends the flooder's own sessions, not everyone's;
                # among equals, the key holding the oldest session (all live equally long: the first to end)
                db.execute(
                    "DELETE FROM console_session WHERE digest IN (SELECT digest FROM console_session"
                    " WHERE access_key = (SELECT access_key FROM console_session GROUP BY access_key"
                    " ORDER BY COUNT(*) + CASE WHEN access_key = ? THEN 1 ELSE 0 END DESC, MIN(expires_at)"
                    " LIMIT 1) ORDER BY expires_at LIMIT ?)",
                    (access_key, count - self._capacity + 1),
                )
            db.execute(
                "INSERT INTO console_session (digest, access_key, expires_at) VALUES (?, ?, ?)",
                (session.digest, access_key, session.expires_at),
            )
        return token, session

    def get(self, token: str | None, *, take_notices: bool = False) -> Session | None:
        """The live session of ``token``, or None; ``take_notices``: with its waiting notices, now removed."""
        if not token:
            return None
        digest = _digest(token)
        with self._db.reading() as db:  # no write unless something changes
            row = db.execute(
                "SELECT access_key, expires_at, (SELECT COUNT(*) FROM console_notice WHERE digest = ?)"
                " FROM console_session WHERE digest = ?",
                (digest, digest),
            ).fetchone()
            if row is None:
                return None
            access_key, expires_at, waiting = row
            if expires_at <= self._clock():
                self._delete(db, digest)
                return None
            taken: list[tuple[float, str]] = []
            if take_notices and waiting:
                taken = db.execute(
                    "DELETE FROM console_notice WHERE digest = ? RETURNING at, notice", (digest,)
                ).fetchall()
        notices = tuple(notice for _, notice in sorted(taken))
        return Session(digest, access_key, _csrf_token(token), expires_at, notices)

    def add_notice(self, session: Session, notice: str) -> None:
        """Show ``notice`` on the session's next page."""
        with self._db.reading() as db:
            db.execute(
                "INSERT INTO console_notice (digest, at, notice) SELECT ?, ?, ?"
                " WHERE (SELECT COUNT(*) FROM console_notice WHERE digest = ?) < ?",
                (session.digest, self._clock(), notice, session.digest, MAX_NOTICES),
            )

    def close(self, token: str | None) -> None:
        if token:
            with self._db.transaction() as db:
                self._delete(db, _digest(token))

    @staticmethod
    def _delete(db: Statements, digest: str) -> None:
        db.execute("DELETE FROM console_session WHERE digest = ?", (digest,))
        db.execute("DELETE FROM console_notice WHERE digest = ?", (digest,))

    def __len__(self) -> int:
        with self._db.reading() as db:
            (count,) = db.execute("SELECT COUNT(*) FROM console_session").fetchone()
        return int(count)
