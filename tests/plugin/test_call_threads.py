"""CallThreads: a thread waiting for the backend never holds back the calls behind it."""

from __future__ import annotations

import threading

import pytest

from kubekms.devenv.processes import wait_for
from kubekms_plugin.call_threads import CallThreads

DEADLINE = 10.0


def alive(prefix: str) -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith(prefix)]


def test_a_waiting_call_gives_its_place_to_a_new_thread() -> None:
    threads = CallThreads(1, "test-wait")
    release = threading.Event()

    def wait_for_the_backend() -> str:
        with threads.waiting():
            assert release.wait(DEADLINE)
        return "slow"

    slow = threads.submit(wait_for_the_backend)
    # With its one thread waiting, the next call still runs, on the thread that took its place.
    assert threads.submit(lambda: "fast").result(DEADLINE) == "fast"
    release.set()
    assert slow.result(DEADLINE) == "slow"
    # Back to one thread taking calls: the first of the two to end a call with the other back leaves.
    wait_for(lambda: len(alive("test-wait")) == 1, DEADLINE, "one thread left")


def test_without_waiting_a_busy_thread_holds_back_the_next_call() -> None:
    """The property above is the pool's doing: a call that does not say it waits keeps its thread."""
    threads = CallThreads(1, "test-busy")
    release = threading.Event()
    busy = threads.submit(release.wait, DEADLINE)
    queued = threads.submit(lambda: "queued")
    assert not queued.done()
    release.set()
    assert busy.result(DEADLINE) is True
    assert queued.result(DEADLINE) == "queued"


def test_an_exception_reaches_the_caller_and_the_thread_keeps_working() -> None:
    threads = CallThreads(1, "test-fail")

    def fail() -> None:
        raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):
        threads.submit(fail).result(DEADLINE)
    assert threads.submit(lambda: 42).result(DEADLINE) == 42
