"""One reconciling operator among replicas: the holder of a coordination.k8s.io Lease.

kopf's peering does not elect: peers of the same priority do not pause each other, so two
replicas would both reconcile and race between "find the key by tag" and "create it". So the
election comes before kopf starts, as controller-runtime does it: a replica waits as a standby
(answering its liveness probe) until it holds the Lease, then runs kopf and renews the Lease
every ``retry_period``; when it cannot renew for ``renew_deadline`` (< ``lease_duration``), or
sees another holder, it exits the process, and its pod restarts as a standby. A standby takes
the Lease only after it saw the same Lease record unchanged for ``lease_duration`` on its own
clock (clocks of the two hosts are never compared), so the old leader has given up first.

Every write carries the Lease's resourceVersion: of two standbys that take over at once, the
apiserver accepts one and answers 409 to the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kubekms_operator import kube
from kubekms_operator.settings import LeaderElectionSettings

log = logging.getLogger("kubekms.operator.leader")

LOST_EXIT_CODE = 3  # the process ends with it when it stops leading


class LeaseElector:
    """Acquires, renews and releases one Lease; the blocking calls run in worker threads."""

    def __init__(self, settings: LeaderElectionSettings, api: client.CoordinationV1Api) -> None:
        self._settings = settings
        self._api = api
        self.holder: str | None = None  # the holder seen last
        self._observed: tuple[str | None, str | None] | None = None  # (holder, resourceVersion)
        self._observed_at = 0.0  # monotonic time the record last changed

    def _spec(self, acquired: datetime, transitions: int) -> client.V1LeaseSpec:
        return client.V1LeaseSpec(
            holder_identity=self._settings.identity,
            lease_duration_seconds=math.ceil(self._settings.lease_duration),
            acquire_time=acquired,
            renew_time=datetime.now(UTC),
            lease_transitions=transitions,
        )

    def try_acquire_or_renew(self) -> bool:
        """One attempt; True when this process holds the Lease afterwards."""
        name, namespace, me = self._settings.name, self._settings.namespace, self._settings.identity
        try:
            lease = self._api.read_namespaced_lease(name, namespace)
        except ApiException as error:
            if error.status != 404:
                raise
            body = client.V1Lease(metadata=client.V1ObjectMeta(name=name, namespace=namespace),
                                  spec=self._spec(datetime.now(UTC), 0))  # fmt: skip
            return self._write(lambda: self._api.create_namespaced_lease(namespace, body))
        spec = lease.spec or client.V1LeaseSpec()
        self.holder = spec.holder_identity or None
        observed = (self.holder, lease.metadata.resource_version)
        if observed != self._observed:
            self._observed, self._observed_at = observed, time.monotonic()
        if self.holder not in (None, me):
            duration = spec.lease_duration_seconds or self._settings.lease_duration
            if time.monotonic() - self._observed_at < duration:
                return False  # held, and renewed within the last lease_duration as far as we saw
        ours = self.holder == me
        lease.spec = self._spec(spec.acquire_time if ours else datetime.now(UTC),
                                (spec.lease_transitions or 0) + (0 if ours else 1))  # fmt: skip
        if self._write(lambda: self._api.replace_namespaced_lease(name, namespace, lease)):
            if not ours:
                log.info("took the lease", extra={"fields": {"lease": name, "previous": self.holder or "-"}})
            self.holder = me
            return True
        return False

    @staticmethod
    def _write(call: Callable[[], object]) -> bool:
        try:
            call()
        except ApiException as error:
            if error.status == 409:  # another replica wrote the Lease first
                return False
            raise
        return True

    def _attempt(self) -> bool:
        try:
            return self.try_acquire_or_renew()
        except Exception as error:  # an apiserver outage or refusal: a failed attempt, retried
            log.warning("lease attempt failed", extra={"fields": {"error": f"{type(error).__name__}: {error}"}})
            return False

    async def acquire(self) -> None:
        while True:
            if await asyncio.to_thread(self._attempt):
                return
            await asyncio.sleep(self._settings.retry_period)  # the election's retry period, not a wait for an event

    async def keep_leading(self) -> None:
        """Renew every retry_period; returns when the lease is lost (another holder, or renew_deadline passed)."""
        renewed = time.monotonic()
        while True:
            await asyncio.sleep(self._settings.retry_period)
            if await asyncio.to_thread(self._attempt):
                renewed = time.monotonic()
            elif self.holder != self._settings.identity:
                log.error("lease lost: another replica holds it", extra={"fields": {"holder": self.holder}})
                return
            elif time.monotonic() - renewed > self._settings.renew_deadline:
                log.error("lease lost: not renewed within the renew deadline",
                          extra={"fields": {"renew_deadline": self._settings.renew_deadline}})  # fmt: skip
                return

    def release(self) -> None:
        """On a clean stop: give the Lease up so a standby takes it at once (not after lease_duration)."""
        name, namespace = self._settings.name, self._settings.namespace
        with contextlib.suppress(Exception):  # best effort: it expires anyway
            lease = self._api.read_namespaced_lease(name, namespace)
            if lease.spec is not None and lease.spec.holder_identity == self._settings.identity:
                lease.spec.holder_identity = None
                lease.spec.lease_duration_seconds = 1
                self._api.replace_namespaced_lease(name, namespace, lease)


@contextlib.asynccontextmanager
async def _standby_liveness(url: str) -> AsyncIterator[None]:
    """Answer the liveness probe while waiting (kopf serves it once it runs): a standby is alive."""
    if not url:
        yield
        return
    parts = urlsplit(url)
    app = web.Application()

    async def alive(request: web.Request) -> web.Response:
        return web.json_response({"standby": True})

    app.router.add_get(parts.path or "/", alive)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, parts.hostname or "0.0.0.0", parts.port or 80).start()
    try:
        yield
    finally:
        await runner.cleanup()


def _exit_when_lost(renewing: asyncio.Task[None]) -> None:
    if renewing.cancelled():
        return
    log.critical("stopping: this replica no longer leads; it restarts as a standby")
    logging.shutdown()
    os._exit(LOST_EXIT_CODE)  # at once, as controller-runtime does: no handler may run past the lease


async def run_as_leader(
    settings: LeaderElectionSettings, liveness: str, operator: Callable[[], Coroutine[Any, Any, None]]
) -> None:
    """Wait for the Lease, then run ``operator`` while holding it; exit the process when it is lost."""
    elector = LeaseElector(settings, client.CoordinationV1Api(kube.api_client()))
    log.info(
        "standby: waiting for the lease", extra={"fields": {"lease": settings.name, "identity": settings.identity}}
    )
    async with _standby_liveness(liveness):
        await elector.acquire()
    log.info("leading: starting the operator", extra={"fields": {"identity": settings.identity}})
    renewing = asyncio.create_task(elector.keep_leading())
    renewing.add_done_callback(_exit_when_lost)
    try:
        await operator()
    finally:
        renewing.remove_done_callback(_exit_when_lost)
        renewing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewing
        await asyncio.to_thread(elector.release)
