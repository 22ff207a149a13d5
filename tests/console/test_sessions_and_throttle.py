"""The session store and the sign-in throttle on an injected clock (no waiting)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubekms.server.console.database import SqliteConsoleDatabase
from kubekms.server.console.sessions import MAX_NOTICES, SessionStore
from kubekms.server.console.settings import ConsoleSettings
from kubekms.server.console.throttle import Limit, SignInThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_session_ends_at_its_lifetime_and_on_close(tmp_path: Path) -> None:
    clock = Clock()
    store = SessionStore(SqliteConsoleDatabase(tmp_path / "sessions.db"), 60, clock=clock)
    token, session = store.open("AK1")
    assert store.get(token) == session and store.get(token + "x") is None and store.get("") is None
    clock.now += 59.9
    assert store.get(token) == session
    clock.now += 0.1
    assert store.get(token) is None and len(store) == 0
    token, _ = store.open("AK1")
    store.close(token)
    assert store.get(token) is None


def test_the_file_holds_no_token_and_no_csrf_token(tmp_path: Path) -> None:
    path = tmp_path / "sessions.db"
    store = SessionStore(SqliteConsoleDatabase(path), 60)
    token, session = store.open("AK1")
    assert len(token) >= 43 and session.csrf_token != token and oct(path.stat().st_mode & 0o777) == "0o600"
    written = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert b"AK1" in written  # the row is there, but neither secret is
    assert token.encode() not in written and session.csrf_token.encode() not in written


def test_notices_waiting_for_one_page_are_bounded(tmp_path: Path) -> None:
    store = SessionStore(SqliteConsoleDatabase(tmp_path / "s.db"), 60)
    token, session = store.open("AK1")
    for number in range(MAX_NOTICES + 5):
        store.add_notice(session, f"notice {number}")
    taken = store.get(token, take_notices=True)
    assert taken is not None and taken.notices == tuple(f"notice {n}" for n in range(MAX_NOTICES))


def test_tokens_are_unique_and_a_full_store_drops_the_oldest() -> None:
    clock = Clock()
    store = SessionStore(SqliteConsoleDatabase(None), 60, clock=clock, capacity=3)
    tokens = []
    for number in range(4):
        tokens.append(store.open(f"AK{number}")[0])
        clock.now += 1
    assert len(set(tokens)) == 4 and len(store) == 3
    assert store.get(tokens[0]) is None and all(store.get(token) for token in tokens[1:])


def test_throttle_counts_failures_in_a_sliding_window() -> None:
    clock = Clock()
    throttle = SignInThrottle(
        SqliteConsoleDatabase(None), per_client=Limit(4, 100), per_access_key=Limit(2, 100), clock=clock
    )
    throttle.failed("10.0.0.1", "AK1")
    assert throttle.retry_after("10.0.0.1", "AK1") == 0
    clock.now += 10
    throttle.failed("10.0.0.1", "AK1")
    assert throttle.retry_after("10.0.0.1", "AK1") == pytest.approx(90)
    assert throttle.retry_after("10.0.0.2", "AK2") == 0  # other client, other key
    clock.now += 89
    assert throttle.retry_after("10.0.0.1", "AK1") == pytest.approx(1)
    clock.now += 1  # the first failure leaves the window; one failure is below the limit
    assert throttle.retry_after("10.0.0.1", "AK1") == 0
    throttle.failed("10.0.0.1", "AK1")
    assert throttle.retry_after("10.0.0.1", "AK1") == pytest.approx(10)  # now the second one is the oldest


def test_per_client_limit_spans_access_keys_and_success_clears_only_the_key() -> None:
    clock = Clock()
    throttle = SignInThrottle(
        SqliteConsoleDatabase(None), per_client=Limit(3, 100), per_access_key=Limit(2, 100), clock=clock
    )
    for access_key in ("AK1", "AK2", "AK3"):
        throttle.failed("10.0.0.1", access_key)
    assert throttle.retry_after("10.0.0.1", "AK9") > 0 and throttle.retry_after("10.0.0.2", "AK9") == 0
    throttle.failed("10.0.0.2", "AK1")
    assert throttle.retry_after("10.0.0.3", "AK1") > 0
    throttle.succeeded("10.0.0.3", "AK1")
    assert throttle.retry_after("10.0.0.3", "AK1") == 0 and throttle.retry_after("10.0.0.1", "AK1") > 0


def test_throttle_memory_is_bounded() -> None:
    clock = Clock()
    throttle = SignInThrottle(
        SqliteConsoleDatabase(None), per_client=Limit(1, 100), per_access_key=Limit(1, 100), clock=clock, capacity=10
    )
    for number in range(1000):
        throttle.failed("10.0.0.1", f"AK{number}")
        clock.now += 0.01
    assert throttle.retry_after("-", "AK999") > 0 and throttle.retry_after("-", "AK0") == 0  # the oldest forgotten


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("on", "console must be a mapping"),
        ({"enabled": "yes"}, "console.enabled must be true or false"),
        ({"session_seconds": 0}, "session_seconds must be a whole number from 1 to 86400"),
        ({"session_seconds": True}, "session_seconds must be"),
        ({"session_seconds": 1.5}, "session_seconds must be"),
        ({"colour": "blue"}, "unknown settings colour"),
    ],
)
def test_console_settings_refuse_bad_values(data: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ConsoleSettings.from_config(data)


def test_console_settings_defaults() -> None:
    assert ConsoleSettings.from_config(None) == ConsoleSettings(enabled=True, session_seconds=1800, sessions_file=None)
    assert ConsoleSettings.from_config({"enabled": False}).enabled is False
