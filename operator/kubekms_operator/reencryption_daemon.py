"""The kopf daemon that finishes rotations of the key that encrypts the cluster's Secrets.

It runs for every KMSKey with ``spec.clusterEncryption.enabled: true``. Whenever the
key's current version has no finished ``status.reencryption`` (a rotation by
annotation, by schedule or by anyone else, or the first time encryption is switched
on), it waits until kube-apiserver writes under the new key_id, then rewrites every
Secret through the API (see :mod:`kubekms_operator.reencryption`), saving progress in
the status after every page so that a restarted operator resumes where it stopped.

Only the object's own key is finished: ``status.keyId`` is read in the backend and must carry
the object's owner-uid tag (:func:`~kubekms_operator.reconcile.owns`), and the version is the
backend's. Whoever may write ``kmskeys/status`` could otherwise name the cluster's key there, have
every Secret of the cluster rewritten at will and read other namespaces' Secret names in the progress.
With ``KUBEKMS_REENCRYPTION_NAMESPACE`` set (the chart sets its release namespace), a KMSKey elsewhere
gets one Warning and nothing else: no probe Secret, no look at the apiserver's metrics. One KMSKey holds
clusterEncryption (the first created, then by namespace/name): a later one gets a Warning and is ignored while
the first exists (looked at again every check interval).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import kopf

from kubekms import plugin_ciphertext
from kubekms.errors import KMSError, NotFound
from kubekms.providers.retry import RetryPolicy
from kubekms_operator import kube
from kubekms_operator.backends import BackendResolver, DependencyNotReady, key_backend
from kubekms_operator.reconcile import owns
from kubekms_operator.reencryption import (
    Progress,
    Rewriter,
    describe_failure,
    is_transient,
    run_pass,
)
from kubekms_operator.settings import ReencryptionSettings
from kubekms_operator.spec import GROUP, KEYS, VERSION

log = logging.getLogger(__name__)

# Waits after a transient apiserver failure: full jitter, growing from 0.5 s, at most 5 s.
APISERVER_BACKOFF = RetryPolicy(base_delay=0.5, max_delay=5.0)


def _cluster_encryption_enabled(spec: Mapping[str, Any], **_: Any) -> bool:
    return bool((spec.get("clusterEncryption") or {}).get("enabled"))


async def _earlier_holder(body: kopf.Body, scope: str) -> str | None:
    """``namespace/name`` of the KMSKey that holds spec.clusterEncryption instead of this one, None if this one
    does. One per cluster (per ``scope``, the namespace it is honoured in, when set): the first created, then by
    namespace and name; a KMSKey being deleted holds it no more."""
    holders = [
        key
        for key in await kube.list_keys(scope)
        if _cluster_encryption_enabled(key.get("spec") or {}) and not key["metadata"].get("deletionTimestamp")
    ]
    first = min(holders, key=_creation_order, default=None)
    if first is None or first["metadata"]["uid"] == body["metadata"]["uid"]:
        return None
    return f"{first['metadata']['namespace']}/{first['metadata']['name']}"


def _creation_order(key: Mapping[str, Any]) -> tuple[str, str, str]:
    meta = key["metadata"]  # creationTimestamps are RFC 3339 in UTC, whole seconds: ordered as text
    return (str(meta.get("creationTimestamp") or ""), meta["namespace"], meta["name"])


async def _yields_to_an_earlier_key(body: kopf.Body, scope: str, reported: set[str]) -> bool:
    """True while another KMSKey holds spec.clusterEncryption (a Warning once per holder): the daemon then
    leaves the cluster's Secrets to that KMSKey's daemon, and takes over once it is gone."""
    holder = await _earlier_holder(body, scope)
    if holder is None:
        reported.clear()
        return False
    if holder not in reported:
        reported.add(holder)
        kopf.warn(
            body,
            reason="ReencryptionRefused",
            message=f"KMSKey {holder}, created first, holds spec.clusterEncryption (one per cluster): this one is"
            " ignored while it exists",
        )
    return True


def _wait_for_adoption(
    rewriter: Rewriter, key_id: str, should_stop: Callable[[], bool], settings: ReencryptionSettings
) -> bool:
    """Touch the probe Secret until the apiserver writes it under ``key_id`` (bounded)."""
    deadline = time.monotonic() + settings.adoption_timeout
    while time.monotonic() < deadline and not should_stop():
        rewriter.touch_probe()
        if rewriter.writes_with(key_id):
            return True
        next_check = time.monotonic() + settings.check_interval
        while time.monotonic() < next_check and not should_stop():
            time.sleep(0.5)  # a polling interval in a worker thread, not test synchronisation
    return False


async def _own_key_version(
    resolver: BackendResolver, body: kopf.Body, status: dict[str, Any], refused: set[str]
) -> int | None:
    """The current version of the key in status if the key is the object's own, else None (a Warning the
    first time: ``refused`` holds the key ids already reported)."""
    key_id, uid = str(status.get("keyId")), body["metadata"]["uid"]
    backend_ref = ((body.get("spec") or {}).get("backendRef") or {}).get("name")
    try:
        async with resolver.using(key_backend(backend_ref, status), require_ready=False) as resolved:
            key = await resolved.backend.describe_key(key_id)
    except NotFound:
        key = None
    except (DependencyNotReady, KMSError) as error:  # the reconciler reports it; looked at again next time
        log.warning(
            "re-encryption: the key could not be read",
            extra={"fields": {"key": key_id, "error": f"{type(error).__name__}: {error}"}},
        )
        return None
    if key is None or not owns(key, uid):
        if key_id not in refused:
            refused.add(key_id)
            kopf.warn(
                body,
                reason="ReencryptionRefused",
                message=f"key {key_id} in status is not this KMSKey's own key: no Secret is rewritten for it",
            )
        return None
    return key.current_version


async def _finish_current_version(
    resolver: BackendResolver,
    rewriter: Rewriter,
    body: kopf.Body,
    should_stop: Callable[[], bool],
    settings: ReencryptionSettings,
    refused: set[str],
) -> None:
    """One look at the key: if its current version has no finished pass, wait for adoption and run it."""
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    current = await kube.get_key(namespace, name)
    status: dict[str, Any] = (current or {}).get("status") or {}  # gone: being deleted, the daemon stops
    key_id = status.get("keyId")
    if not key_id or current is None or current["metadata"].get("uid") != body["metadata"]["uid"]:
        return
    version = await _own_key_version(resolver, body, status, refused)
    progress = Progress.from_status(status.get("reencryption"))
    if not version or (progress is not None and progress.keyVersion == version and progress.finished):
        return
    if progress is None or progress.keyVersion != version:
        progress = Progress(keyVersion=version)
    target = plugin_ciphertext.key_id(key_id, version)
    if not await asyncio.to_thread(_wait_for_adoption, rewriter, target, should_stop, settings):
        if not should_stop():
            kopf.warn(
                body,
                reason="ReencryptionWaiting",
                message=f"kube-apiserver does not write with key version {version} yet; is the kubekms plugin "
                f"configured with key {key_id}? Retrying.",
            )
        return
    # kopf.event, not kopf.info: the operator posts kopf's own messages from WARNING up only.
    kopf.event(
        body, type="Normal", reason="ReencryptionStarted", message=f"rewriting every Secret under version {version}"
    )

    def save(progress: Progress) -> None:  # in the pass's worker thread; apiserver failures raised as they came
        kube.write_key_status(namespace, name, {"reencryption": progress.as_status()})

    finished = await asyncio.to_thread(run_pass, rewriter, progress, save, should_stop, settings.max_rate)
    if finished.finished:
        kopf.event(
            body,
            type="Normal",
            reason="ReencryptionFinished",
            message=f"{finished.done} Secrets now encrypted under key version {version}",
        )


def register(settings: ReencryptionSettings, resolver: BackendResolver) -> None:
    """Add the daemon to kopf's default registry: one per KMSKey with clusterEncryption enabled."""

    @kopf.daemon(GROUP, VERSION, KEYS, when=_cluster_encryption_enabled, cancellation_timeout=30)
    async def finish_rotations(
        name: str, namespace: str | None, body: kopf.Body, stopped: kopf.DaemonStopped, **_: Any
    ) -> None:
        assert namespace is not None, "KMSKey is a namespaced resource"  # kopf's None is for cluster-scoped ones
        if settings.namespace and namespace != settings.namespace:
            kopf.warn(
                body,
                reason="ReencryptionRefused",
                message=f"spec.clusterEncryption is honoured only for KMSKeys of namespace {settings.namespace}",
            )
            await stopped.wait()
            return
        rewriter = Rewriter(kube.api_client(), provider_name=settings.provider_name, probe_namespace=namespace)

        def should_stop() -> bool:
            return bool(stopped)

        failures = 0
        refused: set[str] = set()  # status key ids not this object's own, each reported once
        yielded_to: set[str] = set()  # the earlier KMSKey holding clusterEncryption, reported once
        while not stopped:
            try:
                if not await _yields_to_an_earlier_key(body, settings.namespace, yielded_to):
                    await _finish_current_version(resolver, rewriter, body, should_stop, settings, refused)
            except Exception as error:
                # An apiserver restart (e.g. switching encryption on) must not end the daemon: kopf
                # would start it again only a minute later. The pass resumes from its saved progress.
                if not is_transient(error):
                    raise
                failures += 1
                delay = APISERVER_BACKOFF.delay(failures)
                log.warning(
                    "re-encryption: kube-apiserver unavailable; retrying",
                    extra={"fields": {"key": f"{namespace}/{name}", "error": describe_failure(error), "delay": delay}},
                )
                await stopped.wait(delay)
                continue
            failures = 0
            await stopped.wait(settings.check_interval)
