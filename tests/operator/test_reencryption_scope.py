"""KUBEKMS_REENCRYPTION_NAMESPACE (the chart sets its release namespace): spec.clusterEncryption is honoured
only there. Elsewhere the re-encryption daemon posts one Warning and touches nothing (no probe Secret; a
tenant's KMSKey would otherwise start passes over every Secret of the cluster). A real operator process."""

from __future__ import annotations

import uuid
from pathlib import Path

from kubernetes.client.exceptions import ApiException
from operator_support import Cluster, operator_running

from kubekms.devenv.controlplane import ControlPlane
from kubekms.devenv.kmsserver import KMSServer
from kubekms.devenv.processes import wait_for
from kubekms_operator.reencryption import PROBE_SECRET
from kubekms_operator.settings import ReencryptionSettings

NAMESPACE_PREFIX = "rescope-"
SPEC = {"clusterEncryption": {"enabled": True}, "deletionPolicy": "Delete"}


def has_probe(cluster: Cluster) -> bool:
    try:
        cluster.core.read_namespaced_secret(PROBE_SECRET, cluster.namespace)
    except ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


def test_the_namespace_comes_from_the_environment() -> None:
    assert ReencryptionSettings.from_environment({}).namespace == ""
    assert ReencryptionSettings.from_environment({"KUBEKMS_REENCRYPTION_NAMESPACE": "kms"}).namespace == "kms"


def test_cluster_encryption_is_honoured_only_in_its_namespace(
    cluster: Cluster, plane: ControlPlane, kms: KMSServer, tmp_path: Path
) -> None:
    tenant = Cluster(plane, f"{NAMESPACE_PREFIX}{uuid.uuid4().hex[:8]}")
    env = {"KUBEKMS_REENCRYPTION_NAMESPACE": cluster.namespace, "KUBEKMS_REENCRYPTION_INTERVAL": "1"}
    with operator_running(plane, tmp_path, [cluster.namespace, tenant.namespace], env=env):
        backend = cluster.backend(kms, f"rescope-{uuid.uuid4().hex[:8]}")
        for where in (cluster, tenant):
            where.create_key("cluster-secrets", {**SPEC, "backendRef": {"name": backend}})
        for where in (cluster, tenant):
            where.wait_ready("cluster-secrets")  # the key itself is made in both namespaces

        def refused() -> str | None:
            found = [e.message for e in tenant.events("cluster-secrets") if e.reason == "ReencryptionRefused"]
            return found[0] if found else None

        assert f"only for KMSKeys of namespace {cluster.namespace}" in wait_for(refused, 30, "the tenant's Warning")
        # In its namespace the daemon goes on to its probe (the apiserver here has no KMS plugin: it waits).
        wait_for(lambda: has_probe(cluster), 30, "the probe Secret in the allowed namespace")
        assert not has_probe(tenant)


def test_a_second_cluster_encryption_key_is_ignored_until_the_first_is_gone(
    cluster: Cluster, plane: ControlPlane, kms: KMSServer, tmp_path: Path
) -> None:
    env = {
        "KUBEKMS_REENCRYPTION_NAMESPACE": cluster.namespace,
        "KUBEKMS_REENCRYPTION_INTERVAL": "1",
        "KUBEKMS_REENCRYPTION_ADOPTION_TIMEOUT": "1",  # no KMS plugin here: each pass Warns ReencryptionWaiting
    }
    with operator_running(plane, tmp_path, [cluster.namespace], env=env):
        backend = cluster.backend(kms, f"rescope-{uuid.uuid4().hex[:8]}")
        for name in ("first", "second"):  # created in this order: the first holds clusterEncryption
            cluster.create_key(name, {**SPEC, "backendRef": {"name": backend}})
            cluster.wait_ready(name)

        def reasons(name: str) -> set[str]:
            return {str(e.reason) for e in cluster.events(name)}

        def refused() -> str | None:
            found = [e.message for e in cluster.events("second") if e.reason == "ReencryptionRefused"]
            return found[0] if found else None

        assert "KMSKey " + cluster.namespace + "/first, created first" in wait_for(refused, 30, "second's Warning")
        wait_for(lambda: "ReencryptionWaiting" in reasons("first"), 30, "the first's daemon at work")
        assert "ReencryptionWaiting" not in reasons("second"), "the second's daemon waited for the plugin too"
        assert "ReencryptionRefused" not in reasons("first")

        cluster.delete_key("first")
        wait_for(lambda: "ReencryptionWaiting" in reasons("second"), 30, "the second taking over")
