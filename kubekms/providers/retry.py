"""When a remote KMS call may be repeated, and how long to wait before the next attempt.

Exponential backoff with full jitter (sleep a uniform random time in ``[0, min(cap, base * 2**n))``),
bounded both by a number of attempts and by a deadline for the whole call, so a KMS that
stays down turns into :class:`~kubekms.errors.Unavailable` within a known time.

What may be repeated depends on whether the request can have taken effect:

- the request never left (connection refused) or was refused before it ran (throttled):
  every call may be repeated;
- the request may have run (a 5xx answer, a dropped connection, a timeout): only calls
  whose repetition is harmless (:attr:`Repeat.SAFE`) are repeated;
- NotFound / InvalidState about a key this client created moments ago: the KMS may be
  eventually consistent (as AWS KMS documents), so such calls are repeated for a short window.
"""

from __future__ import annotations

import enum
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from kubekms.errors import InvalidState, KMSError, NotFound, Throttled, Unavailable


class Repeat(enum.Enum):
    """Whether running a call twice has the same effect as running it once."""

    SAFE = "safe"  # reads, data-key operations, and writes that converge to a state (enable, tag...)
    UNSAFE = "unsafe"  # every run changes something new (create-key, rotate-on-demand, create-alias)


class Failure(enum.Enum):
    NOT_SENT = "not sent"  # the connection could not be opened: the KMS never saw the request
    MAYBE_RAN = "maybe ran"  # sent, but no usable answer came back
    ANSWERED = "answered"  # the KMS answered with an error


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff figures in seconds."""

    max_attempts: int = 6
    base_delay: float = 0.05
    max_delay: float = 2.0
    deadline: float = 15.0
    """Most time one call may spend, attempts and waits included."""
    consistency_window: float = 5.0
    """How long after this client created a key NotFound/InvalidState about it is retried."""
    random_source: Callable[[float, float], float] = field(default=random.uniform, repr=False, compare=False)

    def delay(self, attempt: int) -> float:
        """The wait before attempt ``attempt + 1`` (``attempt`` counts from 1): full jitter."""
        # a float power: 2 ** n as an int stops converting to float past n = 1023 (OverflowError); past the
        # float range the product is inf and the cap holds
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** min(attempt - 1, 1000))
        return self.random_source(0.0, ceiling)

    def should_retry(
        self, error: KMSError, failure: Failure, repeat: Repeat, *, recently_created: bool = False
    ) -> bool:
        if failure is Failure.NOT_SENT or isinstance(error, Throttled):
            return True
        if failure is Failure.MAYBE_RAN or isinstance(error, Unavailable):
            return repeat is Repeat.SAFE
        return recently_created and isinstance(error, NotFound | InvalidState)


class RecentKeys:
    """Keys (by id and alias) this client created, until a call on them succeeds or the window ends."""

    def __init__(self, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._window = window
        self._clock = clock
        self._until: dict[str, float] = {}
        self._names: dict[str, tuple[str, ...]] = {}

    def add(self, *refs: str) -> None:
        """One key by all its names: a success under any name ends the window for all."""
        names = tuple(ref for ref in refs if ref)
        until = self._clock() + self._window
        for ref in names:
            self._until[ref] = until
            self._names[ref] = names

    def contains(self, ref: str | None) -> bool:
        if not ref or ref not in self._until:
            return False
        if self._clock() > self._until[ref]:
            self.seen(ref)
            return False
        return True

    def seen(self, ref: str | None) -> None:
        """A call naming ``ref`` succeeded: the KMS shows the key now."""
        if not ref or ref not in self._names:
            return
        for name in self._names[ref]:
            self._until.pop(name, None)
            self._names.pop(name, None)
