"""The kopf daemon that finishes rotations of the key that encrypts the cluster's Secrets.

It runs for every KMSKey with ``spec.clusterEncryption.enabled: true``. Whenever the
key's ``status.currentVersion`` has no finished ``status.reencryption`` (a rotation by
annotation, by schedule or by anyone else, or the first time encryption is switched
on), it waits until kube-apiserver writes under the new key_id, then rewrites every
Secret through the API (see :mod:`kubekms_operator.reencryption`), saving progress in
the status after every page so that a restarted operator resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import kopf

from kubekms import plugin_ciphertext
from kubekms.providers.retry import RetryPolicy
from kubekms_operator import kube
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


def _cluster_encryption_enabled(spec: kopf.Spec, **_: Any) -> bool:
    return bool((spec.get("clusterEncryption") or {}).get("enabled"))


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


async def _finish_current_version(
    rewriter: Rewriter, body: kopf.Body, should_stop: Callable[[], bool], settings: ReencryptionSettings
) -> None:
    """One look at the key: if its current version has no finished pass, wait for adoption and run it."""
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    current = await kube.get_key(namespace, name)
    status: dict[str, Any] = (current or {}).get("status") or {}  # gone: being deleted, the daemon stops
    key_id, version = status.get("keyId"), status.get("currentVersion")
    progress = Progress.from_status(status.get("reencryption"))
    if not key_id or not version or (progress is not None and progress.keyVersion == version and progress.finished):
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


def register(settings: ReencryptionSettings) -> None:
    """Add the daemon to kopf's default registry: one per KMSKey with clusterEncryption enabled."""

    @kopf.daemon(GROUP, VERSION, KEYS, when=_cluster_encryption_enabled, cancellation_timeout=30)
    async def finish_rotations(
        name: str, namespace: str | None, body: kopf.Body, stopped: kopf.DaemonStopped, **_: Any
    ) -> None:
        assert namespace is not None, "KMSKey is a namespaced resource"  # kopf's None is for cluster-scoped ones
        rewriter = Rewriter(kube.api_client(), provider_name=settings.provider_name, probe_namespace=namespace)

        def should_stop() -> bool:
            return bool(stopped)

        failures = 0
        while not stopped:
            try:
                await _finish_current_version(rewriter, body, should_stop, settings)
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
