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
import os
import time
from collections.abc import Callable
from typing import Any

import kopf
from kubernetes import client

from kubekms_operator.kube import api_client
from kubekms_operator.reencryption import Progress, Rewriter, plugin_key_id, run_pass

GROUP, VERSION, PLURAL = "kubekms.io", "v1alpha1", "kmskeys"
PROVIDER_NAME = os.environ.get("KUBEKMS_KMS_PROVIDER_NAME", "kubekms")  # the EncryptionConfiguration's kms name
CHECK_INTERVAL = float(os.environ.get("KUBEKMS_REENCRYPTION_INTERVAL", "10"))
ADOPTION_TIMEOUT = float(os.environ.get("KUBEKMS_REENCRYPTION_ADOPTION_TIMEOUT", "300"))
MAX_RATE = float(os.environ.get("KUBEKMS_REENCRYPTION_MAX_RATE", "100"))  # Secrets per second; 0 = unlimited


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


@kopf.daemon(GROUP, VERSION, PLURAL, when=_cluster_encryption_enabled, cancellation_timeout=30)
async def finish_rotations(
    name: str, namespace: str, body: kopf.Body, stopped: kopf.DaemonStopped, logger: kopf.Logger, **_: Any
) -> None:
    writer = _StatusWriter(namespace, name)
    rewriter = Rewriter(api_client(), provider_name=PROVIDER_NAME, probe_namespace=namespace)

    def should_stop() -> bool:
        return bool(stopped)

    while not stopped:
        status = await asyncio.to_thread(writer.read_status)
        key_id, version = status.get("keyId"), status.get("currentVersion")
        progress = Progress.from_status(status.get("reencryption"))
        if key_id and version and (progress is None or progress.keyVersion != version or not progress.finished):
            if progress is None or progress.keyVersion != version:
                progress = Progress(keyVersion=version)
            target = plugin_key_id(key_id, version)
            adopted = await asyncio.to_thread(_wait_for_adoption, rewriter, target, should_stop)
            if not adopted:
                kopf.warn(
                    body,
                    reason="ReencryptionWaiting",
                    message=f"kube-apiserver does not write with key version {version} yet; is the kubekms plugin "
                    f"configured with key {key_id}? Retrying.",
                )
            else:
                kopf.info(body, reason="ReencryptionStarted", message=f"rewriting every Secret under version {version}")
                finished = await asyncio.to_thread(run_pass, rewriter, progress, writer.save, should_stop, MAX_RATE)
                if finished.finished:
                    kopf.info(
                        body,
                        reason="ReencryptionFinished",
                        message=f"{finished.done} Secrets now encrypted under key version {version}",
                    )
                    logger.info("re-encryption finished: version=%s secrets=%s", version, finished.done)
        await stopped.wait(CHECK_INTERVAL)
