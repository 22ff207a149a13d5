"""Signed-in console sessions, held in memory: cookie token -> principal, CSRF token, expiry.

The cookie carries only a random token; the store is keyed by the token's SHA-256, so the
lookup compares digests, never the secret token itself. Sessions end at a fixed time after
sign-in (no sliding renewal), on sign-out, and when the server restarts.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_SESSIONS = 10_000


@dataclass
class Session:
    access_key: str
    csrf_token: str
    expires_at: float  # on the store's clock
    notices: list[str] = field(default_factory=list)  # shown once, on the next page

    def take_notices(self) -> list[str]:
        notices, self.notices = self.notices, []
        return notices


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class SessionStore:
    def __init__(
        self, lifetime_seconds: float, *, clock: Callable[[], float] = time.monotonic, capacity: int = MAX_SESSIONS
    ) -> None:
        self.lifetime_seconds = lifetime_seconds
        self._clock = clock
        self._capacity = capacity
        self._sessions: dict[bytes, Session] = {}

    def open(self, access_key: str) -> tuple[str, Session]:
        """A new session for ``access_key``: (cookie token, session)."""
        if len(self._sessions) >= self._capacity:
            self._evict()
        token = secrets.token_urlsafe(32)
        session = Session(access_key, secrets.token_urlsafe(32), self._clock() + self.lifetime_seconds)
        self._sessions[_digest(token)] = session
        return token, session

    def get(self, token: str | None) -> Session | None:
        if not token:
            return None
        key = _digest(token)
        session = self._sessions.get(key)
        if session is not None and session.expires_at <= self._clock():
            del self._sessions[key]
            return None
        return session

    def close(self, token: str | None) -> None:
        if token:
            self._sessions.pop(_digest(token), None)

    def __len__(self) -> int:
        return len(self._sessions)

    def _evict(self) -> None:
        """Drop expired sessions; if the store is still full, the oldest (insertion order = sign-in order)."""
        now = self._clock()
        for key in [key for key, session in self._sessions.items() if session.expires_at <= now]:
            del self._sessions[key]
        while len(self._sessions) >= self._capacity:
            del self._sessions[next(iter(self._sessions))]
