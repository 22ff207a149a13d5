"""What the keystore needs from a database engine (SQLite embedded, PostgreSQL shared).

The keystore's SQL is written once, with ``?`` placeholders and portable statements; an
engine runs it, serialises write transactions and says when another process committed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol


class Row(Protocol):
    """A result row readable by position (``(n,) = row``) and by column name."""

    def __getitem__(self, key: int | str, /) -> Any: ...

    def __iter__(self) -> Iterator[Any]: ...


class Result(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Database(Protocol):
    # the column that orders keys created within the same clock tick (insertion order)
    insertion_order: str

    def execute(self, sql: str, params: Sequence[object] = ()) -> Result: ...

    def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> None: ...

    def session(self) -> AbstractContextManager[None]:
        """The statements of one keystore call, on one connection (no transaction)."""
        ...

    def transaction(self) -> AbstractContextManager[None]:
        """One write transaction, serialised against every other writer of this keystore."""
        ...

    def data_version(self) -> int:
        """A number that changes whenever any connection committed a write.

        Within a session it may be the number read when the session took its connection (one
        round trip per call on PostgreSQL): a commit that completed before the call started is
        always seen.
        """
        ...

    def scrub(self) -> None:
        """After a commit that destroyed key material: leave no copy of the old rows in the engine's own files where
        the engine can see to it (best effort: SQLite's log; PostgreSQL keeps dead row versions until VACUUM)."""
        ...

    def close(self) -> None: ...
