"""The retry policy's decisions and backoff bounds."""

from __future__ import annotations

import pytest

from kubekms.errors import AccessDenied, Disabled, InvalidArgument, InvalidState, NotFound, Throttled, Unavailable
from kubekms.providers.retry import Failure, RecentKeys, Repeat, RetryPolicy

POLICY = RetryPolicy()


@pytest.mark.parametrize("repeat", list(Repeat))
def test_not_sent_and_throttled_are_always_retried(repeat: Repeat) -> None:
    assert POLICY.should_retry(Unavailable("refused"), Failure.NOT_SENT, repeat)
    assert POLICY.should_retry(Throttled("slow"), Failure.ANSWERED, repeat)


def test_maybe_ran_is_retried_only_when_harmless() -> None:
    for failure, error in ((Failure.MAYBE_RAN, Unavailable("dropped")), (Failure.ANSWERED, Unavailable("503"))):
        assert POLICY.should_retry(error, failure, Repeat.SAFE)
        assert not POLICY.should_retry(error, failure, Repeat.UNSAFE)


@pytest.mark.parametrize("error", [NotFound("x"), InvalidState("x"), Disabled("x")])
def test_consistency_errors_only_right_after_create(error: Exception) -> None:
    assert POLICY.should_retry(error, Failure.ANSWERED, Repeat.SAFE, recently_created=True)  # type: ignore[arg-type]
    assert not POLICY.should_retry(error, Failure.ANSWERED, Repeat.SAFE)  # type: ignore[arg-type]


@pytest.mark.parametrize("error", [InvalidArgument("x"), AccessDenied("x")])
def test_client_errors_are_never_retried(error: Exception) -> None:
    assert not POLICY.should_retry(error, Failure.ANSWERED, Repeat.SAFE, recently_created=True)  # type: ignore[arg-type]


def test_full_jitter_bounds() -> None:
    seen: list[tuple[float, float]] = []
    policy = RetryPolicy(
        base_delay=0.1, max_delay=1.0, random_source=lambda low, high: seen.append((low, high)) or high
    )
    assert [policy.delay(attempt) for attempt in range(1, 7)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert all(low == 0.0 for low, _ in seen)


def test_recent_keys_window_and_every_name() -> None:
    now = [0.0]
    recent = RecentKeys(5.0, clock=lambda: now[0])
    recent.add("id-1", "alias-1")
    assert recent.contains("id-1") and recent.contains("alias-1")
    recent.seen("alias-1")
    assert not recent.contains("id-1") and not recent.contains("alias-1")
    recent.add("id-2")
    now[0] = 5.1
    assert not recent.contains("id-2")
    assert not recent.contains(None)
