"""Provider gcp in the operator: a KMSBackend on our server's Cloud KMS gRPC API, a service-account key in a Secret.

A KMSKey's alias is its crypto key's id in the KMSBackend's key ring; the official
google-cloud-kms client (inside provider gcp) does every call, the operator's and the test's.
The operator process has GOOGLE_APPLICATION_CREDENTIALS (a link of Application Default
Credentials, as workload identity or the metadata server would be on GKE): a KMSBackend
without credentialsSecretRef uses it.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from operator_support import GROUP, VERSION, Cluster, operator_running

from kubekms.backend import KeyState
from kubekms.devenv.controlplane import ControlPlane
from kubekms.devenv.gcpserver import GcpServer, gcp_server
from kubekms.devenv.processes import ManagedProcess, wait_for
from kubekms.providers import open_backend

pytestmark = pytest.mark.e2e
NAMESPACE_PREFIX = "gcpop-"
PROJECT = "proj-gcp"
RING = "operator-ring"


@pytest.fixture(scope="module")
def gcp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcpServer]:
    with gcp_server(tmp_path_factory.mktemp("kms-gcp"), project_id=PROJECT) as running:
        yield running


@pytest.fixture(scope="module")
def operator(plane: ControlPlane, gcp: GcpServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedProcess]:
    ambient = {"GOOGLE_APPLICATION_CREDENTIALS": str(gcp.key_file())}
    logs = tmp_path_factory.mktemp("operator")
    with operator_running(plane, logs, [f"{NAMESPACE_PREFIX}*"], drift=2, env=ambient) as process:
        yield process


def admin(gcp: GcpServer, operation: str, *args: Any, **kwargs: Any) -> Any:
    """One call of provider gcp as the server's admin, as someone outside Kubernetes would make it."""

    async def run() -> Any:
        backend = await open_backend(gcp.backend_config(key_ring=RING))
        try:
            return await getattr(backend, operation)(*args, **kwargs)
        finally:
            await backend.close()

    return asyncio.run(run())


def gcp_backend(cluster: Cluster, gcp: GcpServer, key_json: str | None = None, *, secret: bool = True) -> str:
    """A KMSBackend as the server's admin; ``key_json`` replaces the service-account key in its Secret;
    without ``secret``, the operator's Application Default Credentials."""
    name = f"gcpop-{uuid.uuid4().hex[:8]}"
    spec: dict[str, Any] = {
        "provider": "gcp",
        "endpoint": f"http://{gcp.endpoint}",  # plaintext on loopback; https:// with caSecretRef otherwise
        "projectId": PROJECT,
        "location": "global",
        "keyRing": RING,
    }
    if secret:
        key_json = gcp.key_file().read_text() if key_json is None else key_json
        cluster.core.create_namespaced_secret(
            cluster.namespace, {"metadata": {"name": f"{name}-sa"}, "stringData": {"key.json": key_json}}
        )
        spec["credentialsSecretRef"] = {"namespace": cluster.namespace, "name": f"{name}-sa"}
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "KMSBackend", "metadata": {"name": name}, "spec": spec}
    cluster.objects.create_cluster_custom_object(GROUP, VERSION, "kmsbackends", body)
    return name


def test_create_rotate_drift_and_schedule_deletion(cluster: Cluster, gcp: GcpServer, operator: ManagedProcess) -> None:
    backend = gcp_backend(cluster, gcp)
    crypto_key = f"app-{uuid.uuid4().hex[:8]}"
    cluster.create_key("app", {"backendRef": {"name": backend}, "aliases": [crypto_key], "description": "on gcp"})
    status = cluster.wait_ready("app")
    assert status["keyId"] == crypto_key and status["currentVersion"] == 1
    key = admin(gcp, "describe_key", crypto_key)
    assert key.description == "on gcp" and key.tags["kubekms.io/owner"] == f"{cluster.namespace}/app"

    cluster.patch_key("app", {"metadata": {"annotations": {"kubekms.io/rotate": "r1"}}})
    wait_for(lambda: cluster.status("app").get("currentVersion") == 2, 30, "status.currentVersion 2")
    assert admin(gcp, "describe_key", crypto_key).current_version == 2

    admin(gcp, "disable_key", crypto_key)  # out of band: every version disabled
    wait_for(lambda: admin(gcp, "describe_key", crypto_key).state == KeyState.ENABLED, 30, "the key enabled again")
    drift = wait_for(
        lambda: [e for e in cluster.events("app") if e.reason == "DriftCorrected"], 30, "a DriftCorrected event"
    )
    assert f"enabled key {crypto_key}" in drift[0].message

    cluster.delete_key("app")
    wait_for(lambda: cluster.key("app") is None, 30, "the KMSKey gone (finalizer done)")
    deleted = admin(gcp, "describe_key", crypto_key)
    assert deleted.state == KeyState.PENDING_DELETION  # destroy scheduled for every version, not destroyed
    assert deleted.deletion_date > datetime.now(UTC) + timedelta(days=29)


def test_a_key_without_a_crypto_key_id_alias_is_refused_clearly(
    cluster: Cluster, gcp: GcpServer, operator: ManagedProcess
) -> None:
    backend = gcp_backend(cluster, gcp)
    cluster.create_key("unnamed", {"backendRef": {"name": backend}})  # alias k8s/<ns>/unnamed: not a crypto key id
    synced = wait_for(
        lambda: (c := cluster.condition("unnamed", "Synced")).get("status") == "False" and c, 60, "Synced False"
    )
    assert "a Cloud KMS crypto key id" in synced["message"]


def backend_ready(cluster: Cluster, name: str) -> dict[str, Any]:
    backend = cluster.objects.get_cluster_custom_object(GROUP, VERSION, "kmsbackends", name)
    conditions = (backend.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == "Ready"), {})


def test_a_secret_without_a_service_account_key_is_reported_without_its_content(
    cluster: Cluster, gcp: GcpServer, operator: ManagedProcess
) -> None:
    backend = gcp_backend(cluster, gcp, key_json='{"type": "service_account", "private_key": "not-for-the-status"}')
    ready = wait_for(lambda: (c := backend_ready(cluster, backend)).get("status") == "False" and c, 30, "Ready False")
    assert (
        f"key key.json of Secret {cluster.namespace}/{backend}-sa must hold a service-account key JSON"
        in (ready["message"])
    )
    assert "not-for-the-status" not in json.dumps(ready)

    secret = {"stringData": {"key.json": gcp.key_file().read_text()}}
    cluster.core.patch_namespaced_secret(f"{backend}-sa", cluster.namespace, secret)
    wait_for(lambda: backend_ready(cluster, backend).get("status") == "True", 30, "Ready True with the right key")


def test_a_backend_without_credentials_secret_uses_application_default_credentials(
    cluster: Cluster, gcp: GcpServer, operator: ManagedProcess
) -> None:
    backend = gcp_backend(cluster, gcp, secret=False)
    crypto_key = f"adc-{uuid.uuid4().hex[:8]}"
    cluster.create_key("adc", {"backendRef": {"name": backend}, "aliases": [crypto_key]})
    assert cluster.wait_ready("adc")["keyId"] == crypto_key
    assert admin(gcp, "describe_key", crypto_key).tags["kubekms.io/owner"] == f"{cluster.namespace}/adc"
