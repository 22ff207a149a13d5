"""Rate limit of failed console sign-ins, per client address and per access key.

A client or an access key with too many failures inside the window is refused without
its secret being checked until the oldest failure leaves the window. Memory is bounded:
past ``capacity`` tracked names the least recently failed are forgotten.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

WINDOW_SECONDS = 300.0
FAILURES_PER_ACCESS_KEY = 5
FAILURES_PER_CLIENT = 20
CAPACITY = 100_000


@dataclass(frozen=True)
class Limit:
    failures: int
    window_seconds: float


class FailureCounter:
    """Failure times per name within a sliding window."""

    def __init__(self, limit: Limit, clock: Callable[[], float], capacity: int) -> None:
        self._limit = limit
        self._clock = clock
        self._capacity = capacity
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, name: str) -> deque[float] | None:
        times = self._failures.get(name)
        if times is None:
            return None
        horizon = self._clock() - self._limit.window_seconds
        while times and times[0] <= horizon:
            times.popleft()
        if not times:
            del self._failures[name]
            return None
        return times

    def retry_after(self, name: str) -> float:
        """Seconds until ``name`` may try again; 0 when it may now."""
        times = self._recent(name)
        if times is None or len(times) < self._limit.failures:
            return 0.0
        return max(times[0] + self._limit.window_seconds - self._clock(), 0.001)

    def fail(self, name: str) -> None:
        times = self._recent(name)
        if times is None:
            times = self._failures[name] = deque(maxlen=self._limit.failures)
            while len(self._failures) > self._capacity:
                self._failures.popitem(last=False)
        self._failures.move_to_end(name)
        times.append(self._clock())

    def forget(self, name: str) -> None:
        self._failures.pop(name, None)


CLIENT_LIMIT = Limit(FAILURES_PER_CLIENT, WINDOW_SECONDS)
ACCESS_KEY_LIMIT = Limit(FAILURES_PER_ACCESS_KEY, WINDOW_SECONDS)


class SignInThrottle:
    def __init__(
        self,
        *,
        per_client: Limit = CLIENT_LIMIT,
        per_access_key: Limit = ACCESS_KEY_LIMIT,
        clock: Callable[[], float] = time.monotonic,
        capacity: int = CAPACITY,
    ) -> None:
        self._clients = FailureCounter(per_client, clock, capacity)
        self._access_keys = FailureCounter(per_access_key, clock, capacity)

    def retry_after(self, client: str, access_key: str) -> float:
        return max(self._clients.retry_after(client), self._access_keys.retry_after(access_key))

    def failed(self, client: str, access_key: str) -> None:
        self._clients.fail(client)
        self._access_keys.fail(access_key)

    def succeeded(self, access_key: str) -> None:
        """The access key's own failures are cleared; the client's stay (one good key does not vouch for others)."""
        self._access_keys.forget(access_key)
