"""Issue 6: rotating the cluster's key ends with every Secret in etcd under the new version.

The whole stack runs for real (kubekms server, plugin, etcd + kube-apiserver with KMS v2,
operator). Nobody rewrites anything by hand: the operator notices the new version,
waits until kube-apiserver writes with the new key_id, and rewrites every Secret; it is
killed in the middle and resumes from the KMSKey status.

Issue 20: each pass posts ReencryptionStarted / ReencryptionFinished Events on the KMSKey,
and kube-apiserver stopped under the daemon's feet (as when ``dev up`` switches encryption
on) is retried within seconds, not after kopf's one-minute restart of a failed daemon.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from kubekms.devenv import encrypted_object
from kubekms.devenv.plugin import PluginProcess
from kubekms.devenv.processes import wait_for
from kubekms.devenv.stack import KEY_NAME, NAMESPACE, Stack, read_key_status, running_stack
from kubekms.keystore import Keystore

pytestmark = pytest.mark.e2e

SECRETS = 300
# kopf starts a failed daemon again 60 s after the failure; a retry inside the daemon is
# well within this, apiserver start on a loaded machine included.
OUTAGE_RECOVERY = 50.0


def stored_key_ids(stack: Stack) -> dict[str, str]:
    return {
        key: encrypted_object.parse(stack.plane.etcd_get(key) or b"").key_id
        for key in stack.plane.etcd_keys("/registry/secrets/")
    }


def reencryption(stack: Stack) -> dict[str, Any]:
    status: dict[str, Any] = read_key_status(stack.api).get("reencryption") or {}
    return status


def reencryption_events(stack: Stack, version: int) -> set[str]:
    events = client.CoreV1Api(stack.api).list_namespaced_event(
        NAMESPACE, field_selector=f"involvedObject.kind=KMSKey,involvedObject.name={KEY_NAME}"
    )
    return {
        event.reason
        for event in events.items
        if event.reason.startswith("Reencryption") and (event.message or "").endswith(f"version {version}")
    }


def stop_apiserver_until_the_daemon_fails(stack: Stack) -> float:
    """Stop kube-apiserver until the re-encryption daemon has met it down; start it again; when it met it."""
    operator_log = stack.paths.logs / "operator.log"
    offset = operator_log.stat().st_size
    stack.plane.stop_apiserver()
    wait_for(
        lambda: b"kube-apiserver unavailable" in operator_log.read_bytes()[offset:],
        30,
        "the re-encryption daemon to meet the stopped apiserver",
    )
    failed_at = time.monotonic()
    stack.plane.restart_apiserver()
    return failed_at


def test_rotation_is_finished_without_manual_steps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBEKMS_REENCRYPTION_MAX_RATE", "60")  # slow enough to be killed mid-pass
    with running_stack(tmp_path / "state") as stack:
        core = client.CoreV1Api(stack.api)
        core.create_namespace({"metadata": {"name": "bulk"}})
        expected = {}
        for index in range(SECRETS):
            value = base64.b64encode(f"value-{index}".encode()).decode()
            core.create_namespaced_secret("bulk", {"metadata": {"name": f"s-{index:04d}"}, "data": {"v": value}})
            expected[f"s-{index:04d}"] = value
        first = wait_for(
            lambda: (r := reencryption(stack)).get("keyVersion") == 1 and r.get("finishedAt") and r,
            240,
            "the initial pass (Secrets written before encryption was on)",
        )
        assert first["done"] >= 1
        version_1 = f"{stack.key_id}:v1"
        assert set(stored_key_ids(stack).values()) == {version_1}
        wait_for(
            lambda: reencryption_events(stack, 1) == {"ReencryptionStarted", "ReencryptionFinished"},
            30,
            "the re-encryption Events of version 1 on the KMSKey",
        )

        client.CustomObjectsApi(stack.api).patch_namespaced_custom_object(
            "kubekms.io", "v1alpha1", NAMESPACE, "kmskeys", KEY_NAME,
            {"metadata": {"annotations": {"kubekms.io/rotate": "rotation-1"}}},
        )  # fmt: skip
        wait_for(lambda: read_key_status(stack.api).get("currentVersion") == 2, 60, "currentVersion 2")
        plugin = stack.children["plugin"]
        assert isinstance(plugin, PluginProcess)
        wait_for(lambda: plugin.status()["key_id"] == f"{stack.key_id}:v2", 30, "the plugin to report v2")
        # The restarted apiserver asks the plugin's Status at once: it writes under v2 when ready.
        failed_at = stop_apiserver_until_the_daemon_fails(stack)

        def under_way() -> dict[str, Any] | None:
            progress = reencryption(stack)
            started = progress.get("keyVersion") == 2 and progress.get("done")
            return progress if started and not progress.get("finishedAt") else None

        middle = wait_for(under_way, 300, "the re-encryption pass under version 2 to be under way")
        assert time.monotonic() - failed_at < OUTAGE_RECOVERY, "the daemon waited for kopf to restart it"
        stack.restart_operator(kill=True)
        final = wait_for(
            lambda: (r := reencryption(stack)).get("keyVersion") == 2 and r.get("finishedAt") and r,
            300,
            "the re-encryption pass to finish after the operator restart",
        )
        assert final["done"] >= SECRETS > middle["done"]
        wait_for(
            lambda: reencryption_events(stack, 2) == {"ReencryptionStarted", "ReencryptionFinished"},
            30,
            "the re-encryption Events of version 2 on the KMSKey",
        )

        version_2 = f"{stack.key_id}:v2"
        stored = stored_key_ids(stack)
        assert len(stored) >= SECRETS
        assert {key for key, key_id in stored.items() if key_id != version_2} == set()
        for name, value in expected.items():
            assert core.read_namespaced_secret(name, "bulk").data == {"v": value}

        # Version 1 is no longer needed: disable it, drop every cache, read everything again.
        keystore = Keystore(stack.paths.kms / "keystore" / stack.server.project_id)
        keystore.set_version_enabled(stack.key_id, 1, enabled=False)
        keystore.close()
        stack.restart_plugin()
        stack.plane.restart_apiserver()
        core = client.CoreV1Api(stack.api)
        for name, value in expected.items():
            assert core.read_namespaced_secret(name, "bulk").data == {"v": value}
