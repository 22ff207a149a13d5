"""Drift correction, and a backend outage: Synced False with a reason, a bounded number of attempts, recovery.

The operator is a real subprocess (drift interval 2 s, KMSBackend health every 2 s).
"""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from operator_support import GROUP, VERSION, Cluster, CountingProxy, operator_running
from prometheus_client.parser import text_string_to_metric_families

from kubekms.backend import KeyState
from kubekms.devenv.controlplane import ControlPlane
from kubekms.devenv.kmsserver import KMSServer
from kubekms.devenv.processes import ManagedProcess, free_port, kubekms_argv, wait_for

pytestmark = pytest.mark.e2e
NAMESPACE_PREFIX = "dr-"
OUTAGE_WINDOW = 20.0  # seconds of outage over which attempts are counted


@pytest.fixture(scope="module")
def metrics_port() -> int:
    """Picked just before the operator binds it: picked at import, it stayed free for the whole run before this
    module (every other server's free_port() or outgoing connection could take it meanwhile)."""
    return free_port()


@pytest.fixture(scope="module")
def operator(
    plane: ControlPlane, kms: KMSServer, metrics_port: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ManagedProcess]:
    logs = tmp_path_factory.mktemp("operator")
    with operator_running(plane, logs, [f"{NAMESPACE_PREFIX}*"], drift=2, metrics_port=metrics_port) as process:
        yield process


def metric(port: int, name: str, **labels: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def test_a_key_disabled_out_of_band_is_enabled_again(
    cluster: Cluster, kms: KMSServer, operator: ManagedProcess, metrics_port: int
) -> None:
    backend = cluster.backend(kms, f"dr-{uuid.uuid4().hex[:8]}")
    cluster.create_key("steady", {"backendRef": {"name": backend}})
    key_id = cluster.wait_ready("steady")["keyId"]
    env = dict(
        os.environ,
        KUBEKMS_ENDPOINT=kms.endpoint,
        KUBEKMS_PROJECT_ID=kms.project_id,
        KUBEKMS_CREDENTIALS_FILE=str(kms.credentials_file("admin")),
    )
    disabled = subprocess.run(
        kubekms_argv("key", "disable", key_id), env=env, check=True, capture_output=True, text=True
    )
    # The CLI prints the key as the server answered the disable; describing it again here would
    # race the operator, which may already have enabled it (drift interval 2 s).
    assert any(line.split() == ["state:", "disabled"] for line in disabled.stdout.splitlines()), disabled.stdout
    wait_for(
        lambda: kms.call("describe_key", key_id).state == KeyState.ENABLED, 30, "the operator to re-enable the key"
    )
    drift = wait_for(
        lambda: [e for e in cluster.events("steady") if e.reason == "DriftCorrected"], 30, "a DriftCorrected event"
    )
    assert drift[0].type == "Warning" and f"enabled key {key_id}" in drift[0].message
    assert metric(metrics_port, "kubekms_operator_key_changes_total", reason="Enabled") >= 1
    assert metric(metrics_port, "kubekms_operator_reconciles_total", trigger="drift", result="synced") >= 1


def test_backend_down_reports_backs_off_and_recovers(
    cluster: Cluster, kms: KMSServer, operator: ManagedProcess
) -> None:
    with CountingProxy(urlsplit(kms.endpoint).port or 0) as proxy:
        backend = cluster.backend(kms, f"dr-{uuid.uuid4().hex[:8]}", endpoint=proxy.endpoint)
        cluster.create_key("before", {"backendRef": {"name": backend}})
        cluster.wait_ready("before")

        proxy.go_down()
        cluster.create_key("during", {"backendRef": {"name": backend}})
        synced = wait_for(
            lambda: (c := cluster.condition("during", "Synced")).get("status") == "False" and c, 60, "Synced False"
        )
        assert synced["reason"] in ("BackendUnavailable", "DependencyNotReady"), synced
        assert cluster.condition("during", "Ready").get("status") == "False"
        before = proxy.connections
        window_end = time.monotonic() + OUTAGE_WINDOW
        while time.monotonic() < window_end:  # an observation window for counting attempts
            assert cluster.condition("during", "Synced").get("status") == "False"
            time.sleep(0.5)
        attempts = proxy.connections - before
        print(f"connections to the dead backend in {OUTAGE_WINDOW:.0f}s: {attempts}")
        # Health checks every 2 s and keys backing off 5, 10, 20 s (each attempt at most 6 tries
        # by the client): a few dozen at most. A hot loop makes thousands.
        assert attempts <= 80

        proxy.up = True
        status = cluster.wait_ready("during", timeout=120)
        assert kms.call("describe_key", status["keyId"]).state == KeyState.ENABLED
        assert cluster.condition("before", "Ready").get("status") == "True"


def test_two_default_backends_block_keys(cluster: Cluster, kms: KMSServer, operator: ManagedProcess) -> None:
    """The schema cannot see other objects, so the operator reports two defaults on the keys that need one."""
    names = [cluster.backend(kms, f"dr-default-{uuid.uuid4().hex[:8]}") for _ in range(2)]
    for name in names:
        cluster.objects.patch_cluster_custom_object(GROUP, VERSION, "kmsbackends", name, {"spec": {"default": True}})
    try:
        cluster.create_key("implicit", {})
        synced = wait_for(
            lambda: (c := cluster.condition("implicit", "Synced")).get("status") == "False" and c, 60, "Synced False"
        )
        assert synced["reason"] == "DependencyNotReady"
        assert "more than one default KMSBackend" in synced["message"] and names[0] in synced["message"]
        cluster.objects.delete_cluster_custom_object(GROUP, VERSION, "kmsbackends", names[1])
        names.pop()
        status = cluster.wait_ready("implicit", timeout=120)
        assert status["backend"] == names[0]
    finally:
        for name in names:
            cluster.objects.delete_cluster_custom_object(GROUP, VERSION, "kmsbackends", name)


def test_a_backend_whose_ca_secret_is_missing_is_not_ready(
    cluster: Cluster, kms: KMSServer, operator: ManagedProcess
) -> None:
    name = cluster.backend(kms, f"dr-ca-{uuid.uuid4().hex[:8]}")
    ca_ref = {"namespace": cluster.namespace, "name": "no-such-ca"}
    cluster.objects.patch_cluster_custom_object(GROUP, VERSION, "kmsbackends", name, {"spec": {"caSecretRef": ca_ref}})

    def ready_condition() -> dict[str, str] | None:
        backend = cluster.objects.get_cluster_custom_object(GROUP, VERSION, "kmsbackends", name)
        status = backend.get("status") or {}
        if status.get("observedGeneration") != backend["metadata"]["generation"]:
            return None
        return next((c for c in status.get("conditions") or [] if c["type"] == "Ready"), None)

    ready = wait_for(ready_condition, 30, "the KMSBackend's Ready condition for its new spec")
    assert ready["status"] == "False" and ready["reason"] == "DependencyNotReady"
    assert f"CA Secret {cluster.namespace}/no-such-ca has no key ca.crt" in ready["message"]
    cluster.objects.delete_cluster_custom_object(GROUP, VERSION, "kmsbackends", name)
