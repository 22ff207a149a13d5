"""The rendered chart against the real kube-apiserver: server-side dry-run, a real install, least-privilege RBAC.

The test control plane is etcd + kube-apiserver only: no kubelet, no controller manager,
no scheduler. Installed objects are stored and validated (admission, schemas, RBAC), but
Deployments never get ReplicaSets, StatefulSets never get Pods or PVCs, and no container
ever runs; what runs (the operator, the server) is tested by their own e2e tests.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chart_support import CHART, FULL_VALUES, ApiServer, by_kind, helm, render, write_values
from kubernetes import client, config

from kubekms.devenv.controlplane import ControlPlane

pytestmark = pytest.mark.e2e

OPERATOR_KINDS = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Deployment", "Service",
                  "PodDisruptionBudget"}  # fmt: skip


@pytest.fixture
def cluster(control_plane: ControlPlane) -> Iterator[ApiServer]:
    api = config.new_client_from_config(config_file=str(control_plane.kubeconfig))
    yield ApiServer(api)
    api.close()


def new_namespace(cluster: ApiServer, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    client.CoreV1Api(cluster.api).create_namespace({"metadata": {"name": name}})
    return name


def release(tmp_path: Path, cluster: ApiServer, values: dict[str, Any]) -> tuple[str, str, list[dict[str, Any]]]:
    """Render a uniquely named release into a new namespace, with the CRDs installed; (name, namespace, objects)."""
    name = f"r{uuid.uuid4().hex[:6]}"
    namespace = new_namespace(cluster, "chart")
    values = {**values, "defaultBackend": {**values.get("defaultBackend", {}), "name": f"{name}-backend"}}
    objects = render(tmp_path, values, release=name, namespace=namespace, include_crds=True)
    cluster.install_crds(by_kind(objects, "CustomResourceDefinition"))
    return name, namespace, [body for body in objects if body["kind"] != "CustomResourceDefinition"]


TLS_VALUES = {**FULL_VALUES, "server": {**FULL_VALUES["server"], "tls": {"secretName": "kubekms-server-tls"}}}
REPLICATED = {**FULL_VALUES, "server": {**FULL_VALUES["server"], "replicas": 3, "database": {"urlSecret": "kms-db"}}}


@pytest.mark.parametrize(
    "values", [{}, FULL_VALUES, TLS_VALUES, REPLICATED], ids=["default", "full", "full-tls", "replicated"]
)
def test_every_rendered_manifest_passes_server_side_dry_run(
    tmp_path: Path, cluster: ApiServer, values: dict[str, Any]
) -> None:
    _, namespace, objects = release(tmp_path, cluster, values)
    server_kind = "Deployment" if values is REPLICATED else "StatefulSet"  # on PostgreSQL: no PVC per replica
    expected = OPERATOR_KINDS | ({"Secret", "ConfigMap", server_kind, "KMSBackend"} if values else set())
    assert {body["kind"] for body in objects} == expected
    for body in objects:
        echoed = cluster.create(body, dry_run=True)
        assert echoed["metadata"]["name"] == body["metadata"]["name"]
        assert "uid" in echoed["metadata"]  # the apiserver defaulted and admitted it
    if values is TLS_VALUES:  # the backend trusts the server's CA from the TLS Secret, over https
        (backend,) = by_kind(objects, "KMSBackend")
        assert backend["spec"]["endpoint"].startswith("https://")
        assert backend["spec"]["caSecretRef"] == {"namespace": namespace, "name": "kubekms-server-tls", "key": "ca.crt"}


def test_apiserver_refuses_what_the_crd_forbids(tmp_path: Path, cluster: ApiServer) -> None:
    """The dry-run above proves something: the same path refuses a KMSBackend the CRD's rules forbid."""
    _, _, objects = release(tmp_path, cluster, FULL_VALUES)
    backend = by_kind(objects, "KMSBackend")[0]
    broken = {**backend, "spec": {**backend["spec"], "endpoint": "not a url"}}
    with pytest.raises(client.exceptions.ApiException) as refused:
        cluster.create(broken, dry_run=True)
    assert refused.value.status == 422 and "endpoint" in str(refused.value.body)


def test_install_operator_and_server_objects_for_real(tmp_path: Path, cluster: ApiServer) -> None:
    """Created and read back; no kubelet here, so the Deployment and StatefulSet are stored but never run."""
    name, namespace, objects = release(tmp_path, cluster, FULL_VALUES)
    for body in objects:
        cluster.create(body)
    deployment = cluster.get(by_kind(objects, "Deployment")[0])
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == f"{name}-kubekms-operator"
    assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    statefulset = cluster.get(by_kind(objects, "StatefulSet")[0])
    assert statefulset["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "2Gi"
    backend = cluster.get(by_kind(objects, "KMSBackend")[0])
    assert backend["spec"]["endpoint"] == f"http://{name}-kubekms-server.{namespace}.svc:8443"
    assert backend["spec"]["credentialsSecretRef"]["accessKeyKey"] == "access_key"


def test_operator_rbac_is_least_privilege_without_reencryption(tmp_path: Path, cluster: ApiServer) -> None:
    name, namespace, objects = release(tmp_path, cluster, {"operator": {"credentialSecrets": ["kms-credentials"]}})
    for body in objects:
        if body["kind"] in OPERATOR_KINDS:
            cluster.create(body)
    account = f"{name}-kubekms-operator"
    elsewhere = new_namespace(cluster, "app")

    def can(verb: str, **attributes: str) -> bool:
        return cluster.can(account, namespace, verb, **attributes)

    kubekms = {"group": "kubekms.io"}
    # What the operator calls.
    assert can("watch", resource="kmskeys", namespace=elsewhere, **kubekms)
    assert can("patch", resource="kmskeys", namespace=elsewhere, **kubekms)  # finalizers, kopf's annotations
    assert can("patch", resource="kmskeys", subresource="status", namespace=elsewhere, **kubekms)
    assert can("list", resource="kmsbackends", **kubekms)
    assert can("patch", resource="kmsbackends", subresource="status", **kubekms)
    assert can("create", resource="events", namespace=elsewhere)
    assert can("list", resource="customresourcedefinitions", group="apiextensions.k8s.io")
    assert can("watch", resource="namespaces")
    assert can("get", resource="secrets", namespace=namespace, name="kms-credentials")
    # What it must not do.
    assert not can("get", resource="secrets", namespace=namespace, name="someone-elses-secret")
    assert not can("list", resource="secrets", namespace=namespace)
    assert not can("get", resource="secrets", namespace=elsewhere, name="kms-credentials")
    assert not can("update", resource="secrets", namespace=elsewhere, name="anything")
    assert not can("get", path="/metrics")
    assert not can("delete", resource="customresourcedefinitions", group="apiextensions.k8s.io")
    assert not can("delete", resource="kmskeys", namespace=elsewhere, **kubekms)
    assert not can("create", resource="kmsbackends", **kubekms)
    assert not can("get", resource="configmaps", namespace=namespace)
    assert not can("create", resource="pods", namespace=namespace)


def test_operator_rbac_with_watched_namespaces_reaches_keys_only_there(tmp_path: Path, cluster: ApiServer) -> None:
    watched, elsewhere = new_namespace(cluster, "watched"), new_namespace(cluster, "app")
    name, namespace, objects = release(tmp_path, cluster, {"operator": {"watchNamespaces": [watched]}})
    for body in objects:
        if body["kind"] in OPERATOR_KINDS:
            cluster.create(body)
    account = f"{name}-kubekms-operator"

    def can(verb: str, **attributes: str) -> bool:
        return cluster.can(account, namespace, verb, **attributes)

    kubekms = {"group": "kubekms.io"}
    assert can("watch", resource="kmskeys", namespace=watched, **kubekms)
    assert can("patch", resource="kmskeys", subresource="status", namespace=watched, **kubekms)
    assert can("patch", resource="kmsbackends", subresource="status", **kubekms)
    assert not can("list", resource="kmskeys", **kubekms)  # not across the cluster
    assert not can("patch", resource="kmskeys", namespace=elsewhere, **kubekms)
    assert not can("patch", resource="kmskeys", subresource="status", namespace=elsewhere, **kubekms)
    assert not can("delete", resource="kmskeys", namespace=watched, **kubekms)


def test_operator_rbac_with_reencryption_reaches_every_secret(tmp_path: Path, cluster: ApiServer) -> None:
    name, namespace, objects = release(tmp_path, cluster, FULL_VALUES)
    for body in objects:
        if body["kind"] in OPERATOR_KINDS:
            cluster.create(body)
    account = f"{name}-kubekms-operator"
    elsewhere = new_namespace(cluster, "app")

    def can(verb: str, **attributes: str) -> bool:
        return cluster.can(account, namespace, verb, **attributes)

    assert can("list", resource="secrets")  # every namespace at once, in pages
    assert can("update", resource="secrets", namespace=elsewhere, name="anything")
    assert can("create", resource="secrets", namespace=elsewhere)  # the probe Secret in the KMSKey's namespace
    assert can("get", path="/metrics")  # which key_id the apiserver writes with
    assert not can("delete", resource="secrets", namespace=elsewhere, name="anything")
    assert not can("watch", resource="secrets")
    assert not can("delete", resource="customresourcedefinitions", group="apiextensions.k8s.io")
    assert not can("update", resource="configmaps", namespace=elsewhere, name="anything")


def test_helm_install_dry_run_against_the_cluster_prints_next_steps(
    tmp_path: Path, control_plane: ControlPlane
) -> None:
    result = helm(
        "install", "notes", str(CHART), "--dry-run=server", "--namespace", "kms", "--kubeconfig",
        str(control_plane.kubeconfig), "-f", str(write_values(tmp_path, FULL_VALUES)),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    notes = result.stdout.split("NOTES:", 1)[1]
    assert "kubectl -n kms rollout status deployment/notes-kubekms-operator" in notes
    assert "2 replica(s): the holder of Lease notes-kubekms-operator reconciles" in notes
    assert "rollout status statefulset/notes-kubekms-server" in notes
    assert "get secret notes-kubekms-server-root-key" in notes  # back up the generated root key
    assert "kubectl get kmsbackend kubekms-embedded" in notes
    assert "Re-encryption is on" in notes


def test_helm_install_upgrade_uninstall_keeps_the_root_key(tmp_path: Path, control_plane: ControlPlane) -> None:
    """A real `helm install`: the generated root key and operator credentials survive upgrades (lookup) and the
    root key survives uninstall (resource-policy keep); without it the keystore on the PVC could never be opened."""
    api = config.new_client_from_config(config_file=str(control_plane.kubeconfig))
    core = client.CoreV1Api(api)
    name = f"h{uuid.uuid4().hex[:6]}"
    namespace = new_namespace(ApiServer(api), "helm")
    values = write_values(tmp_path, {**FULL_VALUES, "defaultBackend": {"enabled": True, "name": f"{name}-backend"}})
    common = ["--namespace", namespace, "--kubeconfig", str(control_plane.kubeconfig), "-f", str(values)]

    def secret_data(secret: str) -> dict[str, str]:
        return dict(core.read_namespaced_secret(secret, namespace).data)

    installed = helm("install", name, str(CHART), *common)
    assert installed.returncode == 0, installed.stderr
    root_key, credentials = secret_data(f"{name}-kubekms-server-root-key"), secret_data("kubekms-operator-credentials")
    upgraded = helm("upgrade", name, str(CHART), *common, "--set", "server.cmkLimit=60")
    assert upgraded.returncode == 0, upgraded.stderr
    assert secret_data(f"{name}-kubekms-server-root-key") == root_key
    assert secret_data("kubekms-operator-credentials") == credentials
    principals = secret_data(f"{name}-kubekms-server-principals")["principals.yaml"]
    assert credentials["secret_key"] and base64.b64decode(credentials["secret_key"]) in base64.b64decode(principals)

    uninstalled = helm("uninstall", name, "--namespace", namespace, "--kubeconfig", str(control_plane.kubeconfig))
    assert uninstalled.returncode == 0, uninstalled.stderr
    assert secret_data(f"{name}-kubekms-server-root-key") == root_key
    remaining = {secret.metadata.name for secret in core.list_namespaced_secret(namespace).items}
    assert "kubekms-operator-credentials" not in remaining

    reinstalled = helm("install", name, str(CHART), *common)  # the kept key is adopted back, not replaced
    assert reinstalled.returncode == 0, reinstalled.stderr
    assert secret_data(f"{name}-kubekms-server-root-key") == root_key
