"""One look for other processes' commits per server request, not per keystore call.

A keystore drops its in-memory cache when another process (a worker, a replica) committed since
it last looked: one ``PRAGMA data_version`` on SQLite, one round trip on PostgreSQL, at the start
of every read call. One request makes several read calls on the same keystore (the key policy,
the key's region, the operation itself); inside :func:`one_look_per_request` only the first of
them looks and the others use what it saw, as if the request's reads were one call.

What stays true: a commit acknowledged before the request's first keystore call is always seen
(a key disabled in another worker refuses the next request at once). A commit acknowledged while
the request runs may or may not be seen by it, as it may by a request that came a moment
earlier. Writes always look (their read-check-write runs on fresh rows), and reads after a write
of the same request read the database again (the write dropped the cache).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

_LOOKED: ContextVar[set[int] | None] = ContextVar("kubekms_keystore_looked", default=None)


@contextlib.contextmanager
def one_look_per_request() -> Iterator[None]:
    """Around one request: each keystore looks for other processes' commits once in it."""
    token = _LOOKED.set(set())
    try:
        yield
    finally:
        _LOOKED.reset(token)


def looked(store: object) -> bool:
    """Whether this request already looked for commits on ``store`` (never outside a request)."""
    done = _LOOKED.get()
    return done is not None and id(store) in done


def mark_looked(store: object) -> None:
    """``store`` looked for commits in this request (call after the look succeeded)."""
    done = _LOOKED.get()
    if done is not None:
        done.add(id(store))
