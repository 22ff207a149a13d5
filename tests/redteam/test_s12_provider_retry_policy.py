"""RetryPolicy.delay stays defined however many attempts were counted.

The ceiling was ``base_delay * 2 ** (attempt - 1)``: from attempt 1026 on (1025 doublings), the int
``2 ** 1025`` no longer converts to a float and ``delay`` raised OverflowError. The operator's
re-encryption daemon counts consecutive apiserver failures without bound and asks
``RetryPolicy(base_delay=0.5, max_delay=5.0).delay(failures)``: after about 45 minutes of an
apiserver outage (waits of 2.5 s on average) its handler raised OverflowError out of the
daemon's loop instead of waiting on. The REST transport asks the same for its own attempts.
"""

from __future__ import annotations

import pytest

from kubekms.providers.retry import RetryPolicy


def _highest(low: float, high: float) -> float:
    return high


@pytest.mark.parametrize("attempt", [1025, 1026, 1100, 10_000, 10**9])
def test_the_delay_after_very_many_attempts_is_the_cap(attempt: int) -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=5.0, random_source=_highest)
    assert policy.delay(attempt) == 5.0


def test_the_delay_still_doubles_up_to_the_cap() -> None:
    policy = RetryPolicy(base_delay=0.05, max_delay=2.0, random_source=_highest)
    assert [policy.delay(attempt) for attempt in range(1, 8)] == [0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0]
