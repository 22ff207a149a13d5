"""Provider aws in the operator: AWS's limits refused clearly in status; the pod's ambient AWS identity.

The operator process gets AWS credentials in its environment (the first link of the AWS SDK's
default chain, as IRSA or an instance profile would be on a real cluster): a KMSBackend without
credentialsSecretRef uses them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import yaml
from kubernetes.client.exceptions import ApiException
from operator_support import Cluster, operator_running

from kubekms.devenv.controlplane import ControlPlane
from kubekms.devenv.kmsserver import KMSServer
from kubekms.devenv.processes import ManagedProcess, wait_for

pytestmark = pytest.mark.e2e
NAMESPACE_PREFIX = "awsop-"


@pytest.fixture(scope="module")
def operator(plane: ControlPlane, kms: KMSServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedProcess]:
    admin = yaml.safe_load(kms.credentials_file("admin").read_text())
    ambient = {
        "AWS_ACCESS_KEY_ID": admin["access_key"],
        "AWS_SECRET_ACCESS_KEY": admin["secret_key"],
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
    }
    log_dir = tmp_path_factory.mktemp("operator")
    with operator_running(plane, log_dir, [f"{NAMESPACE_PREFIX}*"], env=ambient) as process:
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


def test_backend_without_credentials_secret_uses_the_pods_aws_identity(
    cluster: Cluster, kms: KMSServer, operator: ManagedProcess
) -> None:
    backend = cluster.backend(kms, f"awsop-{uuid.uuid4().hex[:8]}", provider="aws", credentials_secret=False)
    cluster.create_key("ambient", {"backendRef": {"name": backend}, "description": "via the pod identity"})
    status = cluster.wait_ready("ambient")
    assert kms.call("describe_key", status["keyId"]).description == "via the pod identity"


def test_credentials_secret_stays_required_for_other_providers(cluster: Cluster) -> None:
    with pytest.raises(ApiException) as refused:
        cluster.objects.create_cluster_custom_object(
            "kubekms.io",
            "v1alpha1",
            "kmsbackends",
            {
                "apiVersion": "kubekms.io/v1alpha1",
                "kind": "KMSBackend",
                "metadata": {"name": f"awsop-{uuid.uuid4().hex[:8]}"},
                "spec": {"provider": "kubekms", "endpoint": "http://127.0.0.1:1"},
            },
        )
    assert refused.value.status == 422 and "credentialsSecretRef is required" in str(refused.value.body)
