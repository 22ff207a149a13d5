"""The bridge from the AWS Encryption SDK's synchronous callbacks to the async backend protocol.

The SDK calls a master key from whatever thread runs ``encrypt``/``decrypt``, and expects a
plain return value. Backend objects (aiohttp sessions, the keystore's loop-bound state) belong
to the event loop that opened them, so every backend call must run on that one loop. A
:class:`LoopThread` is that loop: one private event loop on one daemon thread, owned by the
keyring that opened the backends on it. A synchronous caller submits a coroutine and blocks on
its result with a deadline; the loop never runs SDK code, so it can never wait on itself.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from kubekms.errors import Unavailable

T = TypeVar("T")


class LoopThread:
    def __init__(self, name: str = "kubekms-envelope-loop") -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run ``coroutine`` on the loop and wait for its result (its exception is raised here)."""
        if threading.current_thread() is self._thread:
            coroutine.close()
            raise RuntimeError("LoopThread.run called from its own loop: this would wait on itself")
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise Unavailable(f"backend call did not finish within {timeout:g} s") from None

    def close(self) -> None:
        """Stop the loop and join its thread; pending calls were awaited by their callers."""
        if self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
