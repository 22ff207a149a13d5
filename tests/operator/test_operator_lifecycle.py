"""The whole KMSKey lifecycle through the real API, reconciled into a real kubekms server.

The operator runs as a real ``kubekms operator`` process serving the namespaces ``lc-*``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from operator_support import Cluster, operator_running

from kubekms.backend import KeyState
from kubekms.devenv.controlplane import ControlPlane
from kubekms.devenv.kmsserver import KMSServer
from kubekms.devenv.processes import ManagedProcess, wait_for

pytestmark = pytest.mark.e2e
NAMESPACE_PREFIX = "lc-"


@pytest.fixture(scope="module")
def operator(plane: ControlPlane, kms: KMSServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedProcess]:
    with operator_running(plane, tmp_path_factory.mktemp("operator"), [f"{NAMESPACE_PREFIX}*"]) as process:
        yield process


@pytest.fixture(params=["kubekms", "aws"])
def backend(request: pytest.FixtureRequest, cluster: Cluster, kms: KMSServer, operator: ManagedProcess) -> str:
    return cluster.backend(
        kms, f"lc-{uuid.uuid4().hex[:8]}", provider=request.param, adoption=(f"{NAMESPACE_PREFIX}*",)
    )


def wait_event(cluster: Cluster, name: str, reason: str) -> None:
    """kopf posts Events asynchronously, after the status write."""
    wait_for(lambda: reason in {event.reason for event in cluster.events(name)}, 30, f"a {reason} event on {name}")


def test_create_update_rotate_and_delete(cluster: Cluster, kms: KMSServer, backend: str) -> None:
    cluster.create_key(
        "app",
        {
            "backendRef": {"name": backend},
            "description": "app data",
            "aliases": [f"{cluster.namespace}/app", f"{cluster.namespace}/app-2"],
            "tags": {"team": "payments"},
            "rotation": {"enabled": True, "periodDays": 90},
        },
    )
    status = cluster.wait_ready("app")
    key = kms.call("describe_key", status["keyId"])
    assert key.state == KeyState.ENABLED and status["keyState"] == "Enabled"
    assert key.description == "app data"
    assert set(key.aliases) == {f"{cluster.namespace}/app", f"{cluster.namespace}/app-2"}
    assert key.tags["team"] == "payments"
    assert key.tags["kubekms.io/owner"] == f"{cluster.namespace}/app"
    assert key.tags["kubekms.io/owner-uid"] == cluster.key("app")["metadata"]["uid"]
    assert key.rotation_enabled and key.rotation_interval_days == 90
    assert status["currentVersion"] == 1 and status["nextRotationTime"]
    wait_event(cluster, "app", "Created")

    cluster.patch_key(
        "app", {"spec": {"enabled": False, "tags": {"team": "billing"}, "aliases": [f"{cluster.namespace}/app"]}}
    )
    status = cluster.wait_ready("app")
    key = kms.call("describe_key", status["keyId"])
    assert key.state == KeyState.DISABLED and status["keyState"] == "Disabled"
    assert key.tags["team"] == "billing"
    assert set(key.aliases) == {f"{cluster.namespace}/app"}

    cluster.patch_key(
        "app",
        {"spec": {"enabled": True, "description": "app data v2", "rotation": {"enabled": True, "periodDays": 120}}},
    )
    assert cluster.wait_ready("app")["keyState"] == "Enabled"
    key = kms.call("describe_key", status["keyId"])
    assert key.state == KeyState.ENABLED and key.description == "app data v2"
    assert key.rotation_enabled and key.rotation_interval_days == 120

    cluster.patch_key("app", {"metadata": {"annotations": {"kubekms.io/rotate": "r1"}}})
    status = wait_for(lambda: (s := cluster.status("app")).get("currentVersion") == 2 and s, 30, "currentVersion 2")
    assert status["lastRotateRequest"] == "r1"
    assert kms.call("describe_key", status["keyId"]).current_version == 2
    cluster.patch_key("app", {"metadata": {"labels": {"touch": "1"}}})  # same annotation value: no second rotation
    wait_event(cluster, "app", "Rotated")

    cluster.patch_key("app", {"spec": {"pendingWindowDays": 9}})
    cluster.wait_ready("app")  # the operator handles an object's changes in order: the label change is handled too
    assert kms.call("describe_key", status["keyId"]).current_version == 2
    cluster.delete_key("app")
    wait_for(lambda: cluster.key("app") is None, 30, "the KMSKey to be gone")
    key = kms.call("describe_key", status["keyId"])
    assert key.state == KeyState.PENDING_DELETION
    expected = datetime.now(UTC) + timedelta(days=9)
    assert key.deletion_date is not None and abs(key.deletion_date - expected) < timedelta(minutes=5)


def test_retain_leaves_the_key_untouched(cluster: Cluster, kms: KMSServer, backend: str) -> None:
    cluster.create_key("kept", {"backendRef": {"name": backend}, "deletionPolicy": "Retain"})
    key_id = cluster.wait_ready("kept")["keyId"]
    before = kms.call("describe_key", key_id)
    cluster.delete_key("kept")
    wait_for(lambda: cluster.key("kept") is None, 30, "the KMSKey to be gone")
    after = kms.call("describe_key", key_id)
    assert after.state == KeyState.ENABLED and after.deletion_date is None
    assert after.tags == before.tags


def test_adopt_an_existing_key_and_cancel_its_deletion(cluster: Cluster, kms: KMSServer, backend: str) -> None:
    alias = f"{cluster.namespace}/legacy"
    existing = kms.call("create_key", alias, description="made by hand")
    cluster.create_key("legacy", {"backendRef": {"name": backend}, "adopt": {"alias": alias}, "description": "adopted"})
    status = cluster.wait_ready("legacy")
    assert status["keyId"] == existing.key_id
    adopted = kms.call("describe_key", existing.key_id)
    assert adopted.description == "adopted" and adopted.tags["kubekms.io/owner"] == f"{cluster.namespace}/legacy"
    wait_event(cluster, "legacy", "Adopted")

    doomed = kms.call("create_key", f"{cluster.namespace}/doomed")
    kms.call("schedule_key_deletion", doomed.key_id, 7)
    cluster.create_key("doomed", {"backendRef": {"name": backend}, "adopt": {"keyId": doomed.key_id}})
    status = cluster.wait_ready("doomed")
    revived = kms.call("describe_key", doomed.key_id)
    assert revived.state == KeyState.ENABLED and revived.deletion_date is None and status["keyState"] == "Enabled"
    wait_event(cluster, "doomed", "DeletionCancelled")


def test_a_key_owned_by_another_object_is_never_adopted(cluster: Cluster, kms: KMSServer, backend: str) -> None:
    cluster.create_key("first", {"backendRef": {"name": backend}})
    key_id = cluster.wait_ready("first")["keyId"]
    cluster.create_key("second", {"backendRef": {"name": backend}, "adopt": {"keyId": key_id}})
    synced = wait_for(
        lambda: (c := cluster.condition("second", "Synced")).get("status") == "False" and c, 30, "Synced False"
    )
    assert synced["reason"] == "OwnedByOther"
    assert f"{cluster.namespace}/first" in synced["message"]
    assert kms.call("describe_key", key_id).tags["kubekms.io/owner"] == f"{cluster.namespace}/first"
