"""Signed-in console sessions, shared by every worker process: one SQLite file in the state dir.

The cookie carries a random token (256 bits); the table holds only its SHA-256, so the file
holds nothing a browser could present. The form's CSRF token is an HMAC of the cookie token,
computed again on each request, never stored. A session ends at a fixed wall-clock time after
sign-in (the same clock for every worker; no sliding renewal) and on sign-out, which deletes
its row: the next request on any worker finds no session. Notices ("Key x created.") wait in
the row for the next page, whichever worker serves it.

Calls block on SQLite (:mod:`.database`): the console runs them in a worker thread.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from kubekms.server.console.database import ConsoleDatabase

MAX_SESSIONS = 5_000  # at most ~0.8 MB of rows
MAX_NOTICES = 10  # waiting for one page; more are dropped
_CSRF_CONTEXT = b"kubekms-console-csrf"
SCHEMA = """
CREATE TABLE IF NOT EXISTS console_sessions (
    digest BLOB PRIMARY KEY,
    access_key TEXT NOT NULL,
    expires_at REAL NOT NULL,
    notices TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX IF NOT EXISTS console_sessions_by_expiry ON console_sessions (expires_at);
"""


@dataclass(frozen=True)
class Session:
    digest: bytes
    access_key: str
    csrf_token: str
    expires_at: float  # on the store's clock (wall-clock seconds)
    notices: tuple[str, ...] = ()  # taken from the store for the page being served


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


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
            db.execute("DELETE FROM console_sessions WHERE expires_at <= ?", (now,))
            (count,) = db.execute("SELECT COUNT(*) FROM console_sessions").fetchone()
            if count >= self._capacity:  # the oldest go (all sessions live equally long: the first to end)
                db.execute(
                    "DELETE FROM console_sessions WHERE digest IN"
                    " (SELECT digest FROM console_sessions ORDER BY expires_at LIMIT ?)",
                    (count - self._capacity + 1,),
                )
            db.execute(
                "INSERT INTO console_sessions (digest, access_key, expires_at) VALUES (?, ?, ?)",
                (session.digest, access_key, session.expires_at),
            )
        return token, session

    def get(self, token: str | None, *, take_notices: bool = False) -> Session | None:
        """The live session of ``token``, or None; ``take_notices``: with its waiting notices, now removed."""
        if not token:
            return None
        digest = _digest(token)
        with self._db.reading() as db:  # no write lock unless something changes
            row = db.execute(
                "SELECT access_key, expires_at, notices FROM console_sessions WHERE digest = ?", (digest,)
            ).fetchone()
            if row is None:
                return None
            access_key, expires_at, notices = row
            if expires_at <= self._clock():
                db.execute("DELETE FROM console_sessions WHERE digest = ?", (digest,))
                return None
            taken: tuple[str, ...] = ()
            if take_notices and notices != "[]":
                # compare and set: a notice added since the read stays for the page after
                cleared = db.execute(
                    "UPDATE console_sessions SET notices = '[]' WHERE digest = ? AND notices = ?", (digest, notices)
                )
                taken = tuple(json.loads(notices)) if cleared.rowcount == 1 else ()
        return Session(digest, access_key, _csrf_token(token), expires_at, taken)

    def add_notice(self, session: Session, notice: str) -> None:
        """Show ``notice`` on the session's next page."""
        with self._db.transaction() as db:
            db.execute(
                "UPDATE console_sessions SET notices = json_insert(notices, '$[#]', ?)"
                " WHERE digest = ? AND json_array_length(notices) < ?",
                (notice, session.digest, MAX_NOTICES),
            )

    def close(self, token: str | None) -> None:
        if token:
            with self._db.transaction() as db:
                db.execute("DELETE FROM console_sessions WHERE digest = ?", (_digest(token),))

    def __len__(self) -> int:
        with self._db.reading() as db:
            (count,) = db.execute("SELECT COUNT(*) FROM console_sessions").fetchone()
        return int(count)
