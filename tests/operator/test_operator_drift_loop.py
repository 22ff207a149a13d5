"""The operator-wide drift loop's schedule: each KMSKey checked once per interval after its last
reconciliation, read afresh, and forgotten once it is gone. Its own clock, set by the test (the
loop's real use is covered end to end by test_operator_drift_and_outage)."""

from __future__ import annotations

import asyncio
from typing import Any

from kubekms_operator.drift import DriftLoop


def test_each_key_is_checked_once_per_interval_and_forgotten_when_gone() -> None:
    now = [1000.0]
    objects = {("ns", "a"): {"metadata": {"uid": "u1", "namespace": "ns", "name": "a"}}}
    checked: list[str] = []

    async def read(namespace: str, name: str) -> dict[str, Any] | None:
        return objects.get((namespace, name))

    async def check(body: dict[str, Any]) -> None:
        checked.append(body["metadata"]["uid"])

    async def scenario() -> None:
        loop = DriftLoop(300, read, check, clock=lambda: now[0])
        loop.reconciled("u1", "ns", "a")
        loop.reconciled("u2", "ns", "b")  # deleted before its check
        try:
            now[0] += 299
            await loop.check_due()
            assert checked == [], "not due before the interval"
            now[0] += 1
            await loop.check_due()
            assert checked == ["u1"]
            assert len(loop) == 1, "a key that is gone is forgotten"
            await loop.check_due()
            assert checked == ["u1"], "checked once per interval"
            now[0] += 100
            loop.reconciled("u1", "ns", "a")  # a change handler ran: the next check moves
            now[0] += 250
            await loop.check_due()
            assert checked == ["u1"]
            now[0] += 50
            await loop.check_due()
            assert checked == ["u1", "u1"]
        finally:
            loop.stop()

    asyncio.run(scenario())


def test_a_check_that_never_ends_holds_up_no_other_key() -> None:
    """A backend that does not answer makes its keys' checks hang (up to a request timeout)."""
    hung = asyncio.Event()  # never set
    started: list[str] = []
    checked: list[str] = []

    async def read(namespace: str, name: str) -> dict[str, Any] | None:
        return {"metadata": {"uid": name, "namespace": namespace, "name": name}}

    async def check(body: dict[str, Any]) -> None:
        started.append(body["metadata"]["name"])
        if body["metadata"]["name"].startswith("hung"):
            await hung.wait()
        checked.append(body["metadata"]["name"])

    async def scenario() -> None:
        now = [0.0]
        loop = DriftLoop(300, read, check, concurrency=1, clock=lambda: now[0], patience=0.05)
        for name in ("ok", "hung-1", "hung-2"):  # checked last first
            loop.reconciled(name, "ns", name)
        now[0] += 300
        try:
            await asyncio.wait_for(loop.check_due(), timeout=10)  # the old loop waited for every check
            assert checked == ["ok"] and sorted(started) == ["hung-1", "hung-2", "ok"]
            now[0] += 300
            await asyncio.wait_for(loop.check_due(), timeout=10)
            assert checked == ["ok", "ok"], "the next round checks the others again"
            assert sorted(started) == ["hung-1", "hung-2", "ok", "ok"], "a check still running is not started twice"
        finally:
            loop.stop()

    asyncio.run(scenario())
