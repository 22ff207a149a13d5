"""The Python generators' shared loop: concurrent callers, a warm-up, a measured window."""

from __future__ import annotations

import asyncio
import os
import platform
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def timed_calls(
    callers: int, start_at: float, warmup: float, duration: float, call: Callable[[int], Awaitable[bool]]
) -> dict[str, Any]:
    """``callers`` loops of ``call(index)`` (True: a good answer) from wall-clock ``start_at`` on.

    Calls that start after ``warmup`` seconds and end within the next ``duration`` are measured;
    ``sent`` counts every call (the server's CPU per request is divided by it).
    """
    await asyncio.sleep(max(0.0, start_at - time.time()))  # every generator process starts together
    measure_from = time.perf_counter() + warmup
    measure_until = measure_from + duration
    latencies: list[float] = []
    errors = sent = 0

    async def caller(index: int) -> None:
        nonlocal errors, sent
        while True:
            began = time.perf_counter()
            if began >= measure_until:
                return
            sent += 1
            good = await call(index)
            ended = time.perf_counter()
            if measure_from <= began and ended <= measure_until:
                latencies.append(ended - began)
                errors += not good

    await asyncio.gather(*(caller(index) for index in range(callers)))
    return {"latencies": latencies, "errors": errors, "sent": sent}


def interpreter() -> str:
    """The Python this bench and the processes it starts run on (figures differ by a third between builds:
    Debian's is built with profile-guided and link-time optimisation, a pyenv build with its defaults is not)."""
    path = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
    return f"Python {platform.python_version()} ({path})"
