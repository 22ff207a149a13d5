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
import os
import time
from collections.abc import Callable
from typing import Any

import kopf
from kubernetes import client

from kubekms.providers.retry import RetryPolicy
from kubekms_operator.kube import api_client
from kubekms_operator.reencryption import (
    Progress,
    Rewriter,
    describe_failure,
    is_transient,
    plugin_key_id,
    run_pass,
)

log = logging.getLogger(__name__)

GROUP, VERSION, PLURAL = "kubekms.io", "v1alpha1", "kmskeys"
PROVIDER_NAME = os.environ.get("KUBEKMS_KMS_PROVIDER_NAME", "kubekms")  # the EncryptionConfiguration's kms name
CHECK_INTERVAL = float(os.environ.get("KUBEKMS_REENCRYPTION_INTERVAL", "10"))
ADOPTION_TIMEOUT = float(os.environ.get("KUBEKMS_REENCRYPTION_ADOPTION_TIMEOUT", "300"))
MAX_RATE = float(os.environ.get("KUBEKMS_REENCRYPTION_MAX_RATE", "100"))  # Secrets per second; 0 = unlimited
# Waits after a transient apiserver failure: full jitter, growing from 0.5 s, at most 5 s.
APISERVER_BACKOFF = RetryPolicy(base_delay=0.5, max_delay=5.0)


def _cluster_encryption_enabled(spec: kopf.Spec, **_: Any) -> bool:
    return bool((spec.get("clusterEncryption") or {}).get("enabled"))


class _StatusWriter:
    def __init__(self, namespace: str, name: str) -> None:
        self._objects = client.CustomObjectsApi(api_client())
        self._namespace, self._name = namespace, name

    def read_status(self) -> dict[str, Any]:
        body = self._objects.get_namespaced_custom_object(GROUP, VERSION, self._namespace, PLURAL, self._name)
        status: dict[str, Any] = body.get("status") or {}
        return status

    def save(self, progress: Progress) -> None:
        self._objects.patch_namespaced_custom_object_status(
            GROUP, VERSION, self._namespace, PLURAL, self._name, {"status": {"reencryption": progress.as_status()}}
        )


def _wait_for_adoption(rewriter: Rewriter, key_id: str, should_stop: Callable[[], bool]) -> bool:
    """Touch the probe Secret until the apiserver writes it under ``key_id`` (bounded)."""
    deadline = time.monotonic() + ADOPTION_TIMEOUT
    while time.monotonic() < deadline and not should_stop():
        rewriter.touch_probe()
        if rewriter.writes_with(key_id):
            return True
        next_check = time.monotonic() + CHECK_INTERVAL
        while time.monotonic() < next_check and not should_stop():
            time.sleep(0.5)  # a polling interval in a worker thread, not test synchronisation
    return False


async def _finish_current_version(
    writer: _StatusWriter, rewriter: Rewriter, body: kopf.Body, should_stop: Callable[[], bool]
) -> None:
    """One look at the key: if its current version has no finished pass, wait for adoption and run it."""
    status = await asyncio.to_thread(writer.read_status)
    key_id, version = status.get("keyId"), status.get("currentVersion")
    progress = Progress.from_status(status.get("reencryption"))
    if not key_id or not version or (progress is not None and progress.keyVersion == version and progress.finished):
        return
    if progress is None or progress.keyVersion != version:
        progress = Progress(keyVersion=version)
    target = plugin_key_id(key_id, version)
    if not await asyncio.to_thread(_wait_for_adoption, rewriter, target, should_stop):
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
    finished = await asyncio.to_thread(run_pass, rewriter, progress, writer.save, should_stop, MAX_RATE)
    if finished.finished:
        kopf.event(
            body,
            type="Normal",
            reason="ReencryptionFinished",
            message=f"{finished.done} Secrets now encrypted under key version {version}",
        )


@kopf.daemon(GROUP, VERSION, PLURAL, when=_cluster_encryption_enabled, cancellation_timeout=30)
async def finish_rotations(name: str, namespace: str, body: kopf.Body, stopped: kopf.DaemonStopped, **_: Any) -> None:
    writer = _StatusWriter(namespace, name)
    rewriter = Rewriter(api_client(), provider_name=PROVIDER_NAME, probe_namespace=namespace)

    def should_stop() -> bool:
        return bool(stopped)

    failures = 0
    while not stopped:
        try:
            await _finish_current_version(writer, rewriter, body, should_stop)
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
        await stopped.wait(CHECK_INTERVAL)
