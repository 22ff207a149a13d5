"""One look for other processes' commits per server request, not per keystore call.

A keystore drops its in-memory cache when another process (a worker, a replica) committed since
it last looked: a read of the change counter on SQLite (:mod:`kubekms.keystore.sqlite`), one round
trip on PostgreSQL, at the start of every read call. One request makes several read calls on the
same keystore (the key policy, the key's region, the operation itself); inside
:func:`one_look_per_request` only the first of them looks and the others use what it saw, as if
the request's reads were one call.

What stays true: a commit acknowledged before the request's first keystore call is always seen
(a key disabled in another worker refuses the next request at once). A commit acknowledged while
the request runs may or may not be seen by it, as it may by a request that came a moment
earlier. Writes always look (their read-check-write runs on fresh rows), and reads after a write
of the same request read the database again (the write dropped the cache).
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from types import TracebackType

_LOOKED: ContextVar[set[int] | None] = ContextVar("kubekms_keystore_looked", default=None)


class _RequestScope:
    """A plain context manager: the request path enters one per request (a generator-based one cost 1 µs)."""

    __slots__ = ("_token",)
    _token: Token[set[int] | None]

    def __enter__(self) -> None:
        self._token = _LOOKED.set(set())

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        _LOOKED.reset(self._token)


def one_look_per_request() -> _RequestScope:
    """Around one request: each keystore looks for other processes' commits once in it."""
    return _RequestScope()


def looked(store: object) -> bool:
    """Whether this request already looked for commits on ``store`` (never outside a request)."""
    done = _LOOKED.get()
    return done is not None and id(store) in done


def mark_looked(store: object) -> None:
    """``store`` looked for commits in this request (call after the look succeeded)."""
    done = _LOOKED.get()
    if done is not None:
        done.add(id(store))
