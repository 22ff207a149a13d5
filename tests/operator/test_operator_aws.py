"""A KMSKey that asks for more than AWS KMS allows gets a clear refusal in its status (provider aws)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from operator_support import Cluster, operator_running

from kubekms.devenv.controlplane import ControlPlane
from kubekms.devenv.kmsserver import KMSServer
from kubekms.devenv.processes import ManagedProcess, wait_for

pytestmark = pytest.mark.e2e
NAMESPACE_PREFIX = "awsop-"


@pytest.fixture(scope="module")
def operator(plane: ControlPlane, kms: KMSServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedProcess]:
    with operator_running(plane, tmp_path_factory.mktemp("operator"), [f"{NAMESPACE_PREFIX}*"]) as process:
        yield process


def test_rotation_period_below_aws_minimum_is_refused_clearly(
    cluster: Cluster, kms: KMSServer, operator: ManagedProcess
) -> None:
    backend = cluster.backend(kms, f"awsop-{uuid.uuid4().hex[:8]}", provider="aws")
    cluster.create_key("short", {"backendRef": {"name": backend}, "rotation": {"enabled": True, "periodDays": 30}})
    synced = wait_for(
        lambda: (c := cluster.condition("short", "Synced")).get("status") == "False" and c, 60, "Synced False"
    )
    assert synced["reason"] == "BackendRejected"
    assert "AWS KMS allows a rotation period (days) from 90 to 2560, got 30" in synced["message"]

    cluster.patch_key("short", {"spec": {"rotation": {"enabled": True, "periodDays": 90}}})
    status = cluster.wait_ready("short")
    key = kms.call("describe_key", status["keyId"])
    assert key.rotation_enabled and key.rotation_interval_days == 90
