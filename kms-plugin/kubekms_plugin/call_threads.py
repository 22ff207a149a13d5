"""The threads that run the plugin's Encrypt and Decrypt calls: a few, and one more per backend wait.

gRPC's threaded server gives each call in progress a thread of its pool until the call is
answered, its request's arrival included: with a thread per caller, every call is handed
between threads once more and the threads contend for the interpreter; with a few threads,
calls queue until one is free and find their request already there (``bench/plugin_bench.py``).
A few threads alone would let calls that wait for the backend (a cache miss, a new KEK; up to
the backend's timeout) hold back the calls answered from memory; so a thread about to wait
says so (:meth:`CallThreads.waiting`) and a new thread takes its place meanwhile.
"""

from __future__ import annotations

import contextlib
import functools
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


def _run(future: Future[Any], work: Callable[[], Any]) -> None:
    if not future.set_running_or_notify_cancel():
        return
    try:
        result = work()
    except BaseException as error:  # handed to the caller with the future, as ThreadPoolExecutor does
        future.set_exception(error)
    else:
        future.set_result(result)


class CallThreads(Executor):
    """``size`` threads take submitted calls (started as needed); a thread inside :meth:`waiting`
    does not count, so ``size`` threads keep taking calls however many wait. Its threads are
    daemons that live as long as the process (the plugin drains its calls before it exits)."""

    def __init__(self, size: int, name: str) -> None:
        self._size = size
        self._name = name
        self._calls: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._taking = 0  # threads taking calls: started, not waiting, not leaving
        self._started = 0

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        future: Future[T] = Future()
        with self._lock:
            self._calls.put(functools.partial(_run, future, functools.partial(fn, *args, **kwargs)))
            if self._taking < self._size:
                self._start_thread()
        return future

    def _start_thread(self) -> None:  # with the lock held
        self._taking += 1
        self._started += 1
        threading.Thread(target=self._take_calls, name=f"{self._name}-{self._started}", daemon=True).start()

    def _take_calls(self) -> None:
        while True:
            self._calls.get()()
            with self._lock:
                if self._taking > self._size:  # back from a wait while its replacement took calls
                    self._taking -= 1
                    return

    @contextlib.contextmanager
    def waiting(self) -> Iterator[None]:
        """Around a wait for the backend by one of these threads: another thread takes calls meanwhile."""
        with self._lock:
            self._taking -= 1
            if self._taking < self._size:
                self._start_thread()
        try:
            yield
        finally:
            with self._lock:
                self._taking += 1
