"""Drift correction for every KMSKey from one loop of the operator.

A kopf timer per object would hold a task and kopf's per-object timer state (its latest body
included) for every KMSKey, for a check made every few minutes. Here each reconciled KMSKey
costs an entry (uid, namespace, name, when it is due): a key is checked once
``interval`` seconds have passed since its last reconciliation of any kind, by reading the
object afresh and handing it to ``check``, a few keys at a time.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("kubekms.operator.drift")

PATIENCE_SECONDS = 5.0  # a drift check's turn; a slower one continues without holding up the others

Reader = Callable[[str, str], Awaitable[dict[str, Any] | None]]  # (namespace, name) -> the object or None
Check = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class _Entry:
    due: float  # on the loop's clock (time.monotonic)
    namespace: str
    name: str


class DriftLoop:
    def __init__(
        self,
        interval: float,
        read: Reader,
        check: Check,
        concurrency: int = 8,
        clock: Callable[[], float] = time.monotonic,
        patience: float = PATIENCE_SECONDS,
    ) -> None:
        self._interval = interval
        self._clock = clock
        self._read = read
        self._check = check
        self._concurrency = concurrency
        self._patience = patience
        self._entries: dict[str, _Entry] = {}  # uid -> when and what to check
        self._task: asyncio.Task[None] | None = None
        self._slow: dict[str, asyncio.Task[None]] = {}  # uid -> its check still running after its turn

    def reconciled(self, uid: str, namespace: str, name: str) -> None:
        """The key was just reconciled: its next check is one interval from now.

        The first call starts the loop, in the caller's context: a kopf handler's, where kopf's
        Event posting works (an operator startup handler's context has no Event queue yet).
        """
        self._entries[uid] = _Entry(self._clock() + self._interval, namespace, name)
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="drift checks")

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        for check in self._slow.values():
            check.cancel()

    def forget(self, uid: str) -> None:
        self._entries.pop(uid, None)

    def __len__(self) -> int:
        return len(self._entries)

    async def run(self) -> None:
        """Check the keys that are due, for ever (cancel to stop)."""
        tick = min(self._interval / 4, 1.0)  # a key is checked at most a tick after it is due
        while True:
            await asyncio.sleep(tick)
            await self.check_due()

    async def check_due(self) -> None:
        now = self._clock()
        due = [(uid, entry) for uid, entry in self._entries.items() if entry.due <= now and uid not in self._slow]
        for uid, entry in due:  # not due again while this round runs (a reconcile moves it further)
            self._entries[uid] = _Entry(now + self._interval, entry.namespace, entry.name)

        async def worker() -> None:
            while due:
                uid, entry = due.pop()
                check = asyncio.create_task(self._check_one(uid, entry), name=f"drift check of {uid}")
                # A check slower than the patience (a backend that does not answer) goes on alone and
                # gives its turn up: it must not hold up the round, and with it every other key's check.
                await asyncio.wait({check}, timeout=self._patience)
                if not check.done():
                    self._slow[uid] = check
                    check.add_done_callback(functools.partial(self._finished, uid))

        await asyncio.gather(*(worker() for _ in range(min(self._concurrency, len(due)))))

    def _finished(self, uid: str, _: asyncio.Task[None]) -> None:
        self._slow.pop(uid, None)

    async def _check_one(self, uid: str, entry: _Entry) -> None:
        try:
            await self._read_and_check(uid, entry)
        except Exception:  # one key's bug must not stop the others' checks
            log.exception("drift check failed", extra={"fields": {"object": f"{entry.namespace}/{entry.name}"}})

    async def _read_and_check(self, uid: str, entry: _Entry) -> None:
        body = await self._read(entry.namespace, entry.name)
        if body is None or body["metadata"].get("uid") != uid:
            self.forget(uid)  # gone (a new object of that name is another uid, scheduled by its own handlers)
            return
        await self._check(body)
