"""kopf wiring: thin handlers that parse the object, call the reconciler and write status.

:func:`register` adds every handler to kopf's default registry with the intervals from
:class:`~kubekms_operator.settings.OperatorSettings`, the re-encryption daemon of
:mod:`kubekms_operator.reencryption_daemon` included. One handler run writes the KMSKey's
status once (twice only when a key was chosen and then changed: its id goes first), and kopf keeps
its last handled state in that status (:mod:`kubekms_operator.diffbase`), not in an annotation.
Drift is checked by one loop for every KMSKey (:mod:`kubekms_operator.drift`), not by a kopf timer per object.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any, cast

import kopf
from prometheus_client import start_http_server

from kubekms.backend import KeyMetadata
from kubekms.errors import KMSError
from kubekms.providers import open_backend
from kubekms_operator import kube, metrics, reencryption_daemon
from kubekms_operator.backends import BackendResolver, DependencyNotReady, ResolvedBackend, key_backend
from kubekms_operator.conditions import Condition, key_facts, merge_conditions, now
from kubekms_operator.diffbase import KeyStatusDiffBase, Progress, mark_handled
from kubekms_operator.drift import DriftLoop
from kubekms_operator.failures import Failure, at_deletion, classify
from kubekms_operator.faults import with_faults
from kubekms_operator.finalizer_policy import FINALIZER
from kubekms_operator.kopf_namespaces import serve_listed_namespaces
from kubekms_operator.reconcile import Change, KeyReconciler, OwnerLeaving
from kubekms_operator.settings import OperatorSettings
from kubekms_operator.spec import BACKENDS, GROUP, KEYS, VERSION, DesiredKey, InvalidSpec, parse_key

log = logging.getLogger("kubekms.operator")

WORKER_IDLE_SECONDS = 0.02  # see configure()
EVENT_POSTER_LIMIT = 32  # Events posted at once
EVENT_POSTER_IDLE_SECONDS = 0.1
# kube-apiserver stores objects nested up to ~10,000 levels (a KMSKey's spec.policy is free-form), and kopf
# decodes, walks and compares whole objects recursively: at Python's default limit (1,000) one such KMSKey
# made kopf's watcher fail (RecursionError) and no KMSKey was served any more. Threads have 8 MiB stacks,
# enough for that depth; spec.parse_key then refuses the policy for its depth.
RECURSION_LIMIT = 25_000


async def owner_alive(reference: str, uid: str) -> bool:
    """Whether the KMSKey a key's tags name still exists; OwnerLeaving while it is being deleted."""
    namespace, _, name = reference.partition("/")
    if not namespace or not name:
        return False
    found = await kube.get_key(namespace, name)
    if not found or found["metadata"].get("uid") != uid:
        return False
    if found["metadata"].get("deletionTimestamp"):
        raise OwnerLeaving(f"KMSKey {reference} is being deleted")
    return True


class KeyHandlers:
    """The KMSKey side: one lock per object so that a handler and the drift check never overlap.

    ``serving_since`` (the apiserver's clock when this process started) lets the first attempt on
    an object created later skip the search for a key an earlier attempt made: none can exist.
    """

    def __init__(self, resolver: BackendResolver, drift_interval: float = OperatorSettings.drift_interval) -> None:
        self._resolver = resolver
        self._locks: dict[str, asyncio.Lock] = {}
        self._attempted: set[str] = set()  # uids this process has reconciled
        self.serving_since: datetime | None = None
        self.drift = DriftLoop(drift_interval, kube.get_key, self.check_drift)

    def lock(self, uid: str) -> asyncio.Lock:
        return self._locks.setdefault(uid, asyncio.Lock())

    def _forget(self, uid: str) -> None:
        self._locks.pop(uid, None)
        self._attempted.discard(uid)
        self.drift.forget(uid)

    def _may_have_a_key(self, meta: Mapping[str, Any]) -> bool:
        """False only at the first attempt on an object created after this process started: no other
        process saw it (one replica), and no attempt of this one made a key for it."""
        first = meta["uid"] not in self._attempted
        self._attempted.add(meta["uid"])
        created = _parse_time(meta.get("creationTimestamp"))
        # Both times are the apiserver's, in whole seconds: strictly later means later.
        return not (first and self.serving_since is not None and created is not None and created > self.serving_since)

    async def reconcile(self, trigger: str, body: kopf.Body, retry: int, patch: kopf.Patch | None = None) -> None:
        """Converge the object's key and write its status; ``patch`` is kopf's (none for a drift check)."""
        async with self.lock(body["metadata"]["uid"]):
            await self._reconcile(trigger, body, retry, patch)

    async def _reconcile(self, trigger: str, body: kopf.Body, retry: int, patch: kopf.Patch | None) -> None:
        """:meth:`reconcile` under the object's lock."""
        meta, status = body["metadata"], dict(body.get("status") or {})
        started = time.monotonic()
        unwritten: dict[str, Any] = {}  # status fields the failure report must carry
        made: list[Change] = []  # what changed in the backend, each an Event whether or not status says so
        drift = trigger == "drift"
        try:
            desired = parse(body)
            may_exist = self._may_have_a_key(meta)
            async with self._resolver.using(key_backend(desired.backend, status)) as resolved:
                await self._sync(resolved, desired, body, status, may_exist, unwritten, made)
        except Exception as error:
            post_changes(body, made, drift=drift)
            failure = classify(error)
            if failure is None:
                raise
            await self._report(body, status, failure, unwritten)
            metrics.RECONCILES.labels(trigger, failure.reason).inc()
            if not failure.retryable and patch is not None:
                mark_handled(body, patch)  # no retry: only a further change runs the handlers again
            raise failure.for_kopf(retry) from None
        finally:
            metrics.RECONCILE_SECONDS.labels(trigger).observe(time.monotonic() - started)
            self.drift.reconciled(meta["uid"], meta["namespace"], meta["name"])
        metrics.RECONCILES.labels(trigger, "synced").inc()
        post_changes(body, made, drift=drift)

    async def check_drift(self, raw: dict[str, Any]) -> None:
        """The drift loop's check of one KMSKey, ``raw`` as the loop read it.

        That read came before the object's lock: a change handler may have run since (a spec change
        just applied), so the check reconciles the object as read again under the lock, never ``raw``.
        """
        uid, namespace, name = raw["metadata"]["uid"], raw["metadata"]["namespace"], raw["metadata"]["name"]
        if not _is_drift_check_due(raw):
            return
        async with self.lock(uid):
            fresh = await kube.get_key(namespace, name)
            if fresh is None or fresh["metadata"].get("uid") != uid or not _is_drift_check_due(fresh):
                return
            with contextlib.suppress(kopf.TemporaryError, kopf.PermanentError):  # reported; the next check retries
                await self._reconcile("drift", kopf.Body(cast(kopf.RawBody, fresh)), retry=0, patch=None)

    async def _sync(
        self,
        resolved: ResolvedBackend,
        desired: DesiredKey,
        body: kopf.Body,
        status: dict[str, Any],
        may_exist: bool,
        unwritten: dict[str, Any],
        made: list[Change],
    ) -> None:
        """Converge the key and write status; ``status`` follows every write (the failure report merges
        into it), on a failure ``unwritten`` holds the facts of a key chosen but not yet in status, and
        ``made`` gets every change made in the backend, failure or not."""
        meta = body["metadata"]
        namespace, name, generation = meta["namespace"], meta["name"], meta.get("generation")
        known_alias = str(status.get("alias") or "")  # before record() below moves it

        async def record(key: KeyMetadata) -> None:
            status.update(key_facts(key), backend=resolved.name)
            await kube.patch_key_status(namespace, name, {**key_facts(key), "backend": resolved.name})

        # Consent is asked at the take-over only: a key already tagged with this object's UID is its own.
        reconciler = KeyReconciler(
            resolved.backend, desired, owner_alive, record, consent=lambda: resolved.check_adoption(namespace)
        )
        try:
            key, _ = await reconciler.find_or_create(str(status.get("keyId") or ""), may_exist=may_exist)
            # status.lastRotateRequest may lag (a refused status write): the key's own rotation tag decides.
            converged = await reconciler.converge(key, str(status.get("lastRotateRequest") or ""), known_alias)
        except Exception as error:
            if reconciler.unrecorded is not None:  # written with the failure report, in the same patch
                unwritten.update(key_facts(reconciler.unrecorded), backend=resolved.name)
                status.update(unwritten)
            failure = classify(error)
            if isinstance(error, KMSError) and failure is not None and failure.reason == "AccessDenied":
                await self._resolver.forget_backend(resolved.backend)  # closed once no handler uses it
            raise
        finally:
            made += reconciler.made  # before the status write below, which may be refused
        facts = key_facts(converged.key)
        if not status.get("publicKey") or str(status.get("keyId")) != converged.key.key_id:
            facts["publicKey"] = await reconciler.public_key(converged.key)  # once: a public key never changes
        ready = converged.key.state.name == ("ENABLED" if desired.enabled else "DISABLED")
        conditions = merge_conditions(
            status.get("conditions"),
            [
                Condition("Ready", ready, "Ready" if ready else "NotReady", readiness(facts, desired)),
                Condition("Synced", True, "AliasKept", converged.kept_alias)
                if converged.kept_alias
                else Condition("Synced", True, "Synced", f"key {converged.key.key_id} matches the spec"),
            ],
            generation,
        )
        await kube.patch_key_status(
            namespace,
            name,
            {
                **facts,
                "backend": resolved.name,
                "lastRotateRequest": converged.rotate_request or None,
                "observedGeneration": generation,
                "conditions": conditions,
            },
        )

    async def _report(
        self, body: kopf.Body, status: Mapping[str, Any], failure: Failure, unwritten: Mapping[str, Any]
    ) -> None:
        meta = body["metadata"]
        updates = [Condition("Synced", False, failure.reason, failure.message)]
        if failure.key_unusable or not status.get("keyId"):
            updates.append(Condition("Ready", False, failure.reason, failure.message))
        conditions = merge_conditions(status.get("conditions"), updates, meta.get("generation"))
        try:
            await kube.patch_key_status(meta["namespace"], meta["name"], {**unwritten, "conditions": conditions})
        except kube.StatusNotWritten as error:  # the Event and the log still tell; kopf retries
            log.warning("KMSKey status not written", extra={"fields": {"error": str(error)}})
        kopf.warn(body, reason=failure.reason, message=failure.message)
        log.warning(
            "KMSKey not synced",
            extra={"fields": {"object": f"{meta['namespace']}/{meta['name']}", "reason": failure.reason}},
        )

    async def delete_or_retain_key(self, body: kopf.Body, retry: int) -> None:
        """The KMSKey is being deleted: schedule its key's deletion (Delete) or leave the key as it is (Retain)."""
        meta, status = body["metadata"], body.get("status") or {}
        async with self.lock(meta["uid"]):
            try:
                desired = parse(body, deleting=True)
            except InvalidSpec as error:
                kopf.warn(body, reason="InvalidSpec", message=f"key neither deleted nor retained: {error}")
                return
            if desired.deletion_policy == "Retain":
                key = status.get("keyId") or "(none)"
                self._forget(meta["uid"])
                post_changes(
                    body, [Change("Retained", f"key {key} left untouched (deletionPolicy Retain)")], drift=False
                )
                return
            backend = key_backend(desired.backend, status)
            try:
                async with self._resolver.using(backend, require_ready=False) as resolved:
                    reconciler = KeyReconciler(
                        resolved.backend,
                        desired,
                        owner_alive,
                        consent=lambda: resolved.check_adoption(meta["namespace"]),
                    )
                    changes = await reconciler.schedule_deletion(str(status.get("keyId") or ""))
            except DependencyNotReady as error:
                if error.reason == "AdoptionNotAllowed" or (backend and await kube.get_backend(backend) is None):
                    kopf.warn(body, reason="KeyNotDeleted", message=f"{error}; the key is left as it is")
                    return
                raise classify(error).for_kopf(retry) from None  # type: ignore[union-attr]
            except KMSError as error:
                failure = classify(error)
                assert failure is not None
                failure = at_deletion(failure)  # retried: kopf keeps the finalizer while the key is not scheduled
                await self._report(body, status, failure, {})
                raise failure.for_kopf(retry) from None
        self._forget(meta["uid"])
        post_changes(body, changes, drift=False)


def _is_drift_check_due(raw: Mapping[str, Any]) -> bool:
    """False while the object is being deleted or holds a spec the change handlers have not handled yet."""
    meta, status = raw["metadata"], raw.get("status") or {}
    synced: dict[str, Any] = next((c for c in status.get("conditions") or [] if c.get("type") == "Synced"), {})
    return not meta.get("deletionTimestamp") and synced.get("observedGeneration") == meta.get("generation")


def parse(body: kopf.Body, *, deleting: bool = False) -> DesiredKey:
    """The object's DesiredKey; ``deleting``: without spec.policy, which has no part in a deletion (a policy
    the operator refuses, e.g. nested too deep, must not keep the key from its deletionPolicy)."""
    meta, spec = body["metadata"], body.get("spec") or {}
    if deleting:
        spec = {field: value for field, value in spec.items() if field != "policy"}
    return parse_key(
        spec,
        namespace=meta["namespace"],
        name=meta["name"],
        uid=meta["uid"],
        annotations=meta.get("annotations") or {},
    )


def _parse_time(text: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


def readiness(facts: Mapping[str, Any], desired: DesiredKey) -> str:
    wanted = "Enabled" if desired.enabled else "Disabled"
    if facts["keyState"] == wanted:
        return f"key {facts['keyId']} is {wanted.lower()}, version {facts['currentVersion']}"
    return f"key {facts['keyId']} is {facts['keyState']}, the spec wants {wanted}"


def post_changes(body: kopf.Body, changes: list[Change], *, drift: bool) -> None:
    for change in changes:
        metrics.KEY_CHANGES.labels(change.reason).inc()
        if drift or change.drift:
            kopf.warn(body, reason="DriftCorrected", message=f"changed outside Kubernetes; {change.message}")
        else:
            kopf.event(body, type="Normal", reason=change.reason, message=change.message)


async def check_backend(resolver: BackendResolver, body: kopf.Body, patch: kopf.Patch) -> None:
    meta = body["metadata"]
    try:
        async with resolver.lease(dict(body)) as backend:
            await backend.check_health()
        condition = Condition("Ready", True, "Healthy", "the backend answered an authenticated call")
        metrics.BACKEND_HEALTH.labels("healthy").inc()
    except (DependencyNotReady, KMSError) as error:
        failure = classify(error)
        assert failure is not None
        condition = Condition("Ready", False, failure.reason, failure.message)
        metrics.BACKEND_HEALTH.labels(failure.reason).inc()
        if failure.reason == "AccessDenied":
            await resolver.forget(meta["uid"])
    status = body.get("status") or {}
    patch.status["conditions"] = merge_conditions(status.get("conditions"), [condition], meta.get("generation"))
    patch.status["lastCheckedTime"] = now()
    patch.status["observedGeneration"] = meta.get("generation")


def register(settings: OperatorSettings, resolver: BackendResolver | None = None) -> None:
    """Add the KMSKey and KMSBackend handlers to kopf's default registry (and allow objects as deep as
    the apiserver stores them: RECURSION_LIMIT)."""
    sys.setrecursionlimit(max(sys.getrecursionlimit(), RECURSION_LIMIT))
    resolver = resolver or BackendResolver(
        with_faults(open_backend), credentials_namespace=settings.credentials_namespace
    )
    keys = KeyHandlers(resolver, settings.drift_interval)
    reencryption_daemon.register(settings.reencryption, resolver)
    serve_listed_namespaces()

    @kopf.on.startup()
    async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.persistence.finalizer = FINALIZER  # also written by finalizer_policy at creation
        # kopf leaves annotations under its own prefix out of the diff: a sub-domain, so that
        # kubekms.io/rotate still counts as a change.
        settings.persistence.progress_storage = Progress()
        settings.persistence.diffbase_storage = KeyStatusDiffBase()
        settings.posting.level = logging.WARNING  # explicit Events per change; kopf's own only for problems
        # No limit on kopf's workers: a worker keeps its slot while its handler waits on a backend and
        # while kopf sleeps out its retry delay, so with a limit (64 was set here) that many KMSKeys of a
        # hung or failing backend held every slot and no new KMSKey of any backend was handled for as long
        # as 30 s (a request timeout) to 300 s (a retry delay). The work is bounded per KMSBackend instead
        # (backends.BACKEND_CONCURRENCY), status writes by the worker threads, Events below.
        settings.queueing.worker_limit = None
        # A worker lingers this long after its object's last event (kopf's 5 s kept a task per KMSKey of a
        # burst alive for that long); an event after the wait starts a new worker.
        settings.queueing.idle_timeout = WORKER_IDLE_SECONDS
        settings.posting.worker_limit = EVENT_POSTER_LIMIT
        settings.posting.idle_timeout = EVENT_POSTER_IDLE_SECONDS  # one Event per object at a time, mostly
        try:
            keys.serving_since = await kube.server_time()
        except Exception:  # then every first attempt searches for an earlier key, as a retry does
            log.warning("the apiserver's time is unknown: every creation searches for an earlier key", exc_info=True)

    if settings.metrics_port:
        start_http_server(settings.metrics_port)

    @kopf.on.cleanup()
    async def close_backends(**_: Any) -> None:
        keys.drift.stop()
        await resolver.close()

    @kopf.on.resume(GROUP, VERSION, KEYS)
    async def resume_key(body: kopf.Body, retry: int, patch: kopf.Patch, **_: Any) -> None:
        await keys.reconcile("resume", body, retry, patch)

    @kopf.on.create(GROUP, VERSION, KEYS)
    async def create_key(body: kopf.Body, retry: int, patch: kopf.Patch, **_: Any) -> None:
        await keys.reconcile("create", body, retry, patch)

    @kopf.on.update(GROUP, VERSION, KEYS)
    async def update_key(body: kopf.Body, retry: int, patch: kopf.Patch, **_: Any) -> None:
        await keys.reconcile("update", body, retry, patch)

    @kopf.on.delete(GROUP, VERSION, KEYS)
    async def delete_key(body: kopf.Body, retry: int, **_: Any) -> None:
        await keys.delete_or_retain_key(body, retry)

    @kopf.on.resume(GROUP, VERSION, BACKENDS)
    @kopf.on.create(GROUP, VERSION, BACKENDS)
    @kopf.on.update(GROUP, VERSION, BACKENDS)
    async def backend_changed(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
        await check_backend(resolver, body, patch)

    @kopf.timer(GROUP, VERSION, BACKENDS, interval=settings.health_interval, initial_delay=settings.health_interval)
    async def backend_health(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
        await check_backend(resolver, body, patch)

    @kopf.on.delete(GROUP, VERSION, BACKENDS, optional=True)
    async def backend_deleted(body: kopf.Body, **_: Any) -> None:
        await resolver.forget(body["metadata"]["uid"])

    @kopf.on.event(GROUP, VERSION, BACKENDS)
    async def backend_seen(type: str, body: kopf.Body, **_: Any) -> None:
        resolver.seen(body, deleted=type == "DELETED")
