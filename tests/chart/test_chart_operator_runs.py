"""The real operator under the chart's RBAC: proof that the least privilege is also enough privilege.

The chart's ServiceAccount, ClusterRole, Role and bindings are installed for real; the
operator then runs as a local process (there is no kubelet to run the Deployment's pod)
with a token of that ServiceAccount, so every call it makes is authorized by the chart's
rules and nothing else. It must create a key, report it Ready and release it on delete.
"""

from __future__ import annotations

import sys
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from chart_support import ApiServer, by_kind, render, service_account_kubeconfig
from kubernetes import client, config

from kubekms.backend import KeyState
from kubekms.devenv.controlplane import ControlPlane
from kubekms.devenv.kmsserver import KMSServer, kms_server
from kubekms.devenv.processes import ManagedProcess, free_port, wait_for

pytestmark = pytest.mark.e2e

GROUP, VERSION = "kubekms.io", "v1alpha1"
RBAC_KINDS = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}


@pytest.fixture
def kms(tmp_path: Path) -> Iterator[KMSServer]:
    with kms_server(tmp_path / "kms") as server:
        yield server


@pytest.mark.parametrize("scoped", [False, True], ids=["all-namespaces", "watched-namespace"])
def test_operator_converges_with_only_the_charts_permissions(
    tmp_path: Path, control_plane: ControlPlane, kms: KMSServer, scoped: bool
) -> None:
    admin = config.new_client_from_config(config_file=str(control_plane.kubeconfig))
    cluster, core, objects = ApiServer(admin), client.CoreV1Api(admin), client.CustomObjectsApi(admin)
    release, suffix = f"op{uuid.uuid4().hex[:6]}", uuid.uuid4().hex[:6]
    namespace, apps = f"kms-{suffix}", f"apps-{suffix}"
    for name in (namespace, apps):
        core.create_namespace({"metadata": {"name": name}})
    # Scoped: KMSKeys only in `apps`, granted by a Role there instead of the ClusterRole.
    values = {"operator": {"credentialSecrets": ["kms-credentials"], "watchNamespaces": [apps] if scoped else []}}
    rendered = render(tmp_path, values, release=release, namespace=namespace, include_crds=True)
    cluster.install_crds(by_kind(rendered, "CustomResourceDefinition"))
    for body in rendered:
        if body["kind"] in RBAC_KINDS:
            cluster.create(body)
    account = f"{release}-kubekms-operator"
    # The RBAC authorizer serves new bindings from its informers: poll until it answers with them.
    wait_for(
        lambda: cluster.can(account, namespace, "patch", group=GROUP, resource="kmskeys", subresource="status",
                            namespace=apps),
        30, "the chart's ClusterRoleBinding seen by the authorizer",
    )  # fmt: skip
    credentials = yaml.safe_load(kms.credentials_file("admin").read_text())
    core.create_namespaced_secret(namespace, {"metadata": {"name": "kms-credentials"}, "stringData": credentials})
    backend_name = f"chart-{suffix}"
    objects.create_cluster_custom_object(GROUP, VERSION, "kmsbackends", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "KMSBackend", "metadata": {"name": backend_name},
        "spec": {"provider": "kubekms", "endpoint": kms.endpoint, "projectId": kms.project_id,
                 "credentialsSecretRef": {"namespace": namespace, "name": "kms-credentials"}},
    })  # fmt: skip

    # The Deployment's arguments, as a local process; its only identity is the ServiceAccount.
    (deployment,) = by_kind(rendered, "Deployment")
    # The container's ports are replaced by free loopback ports: the test shares the host with others.
    container_args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    args = [arg for arg in container_args if not arg.startswith(("--liveness=", "--metrics-port="))]
    assert args[:2] == ["operator", f"--namespace={apps}" if scoped else "--all-namespaces"]
    port, metrics_port = free_port(), free_port()
    kubeconfig = service_account_kubeconfig(control_plane, namespace, account, tmp_path / "operator.kubeconfig")
    operator = ManagedProcess(
        "kubekms operator (chart RBAC)",
        [
            sys.executable,
            "-m",
            "kubekms.cli.main",
            *args,
            "--liveness",
            f"http://127.0.0.1:{port}/healthz",
            "--metrics-port",
            str(metrics_port),
        ],
        tmp_path / "operator.log",
        env={"KUBECONFIG": str(kubeconfig), "PATH": "/usr/bin:/bin"},
    )
    operator.start()
    try:
        operator.wait_until(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).status == 200,
            60, "the operator's liveness endpoint",
        )  # fmt: skip
        objects.create_namespaced_custom_object(GROUP, VERSION, apps, "kmskeys", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "KMSKey", "metadata": {"name": "app"},
            "spec": {"backendRef": {"name": backend_name}, "description": "under chart RBAC"},
        })  # fmt: skip

        def ready() -> dict[str, Any] | None:
            status = objects.get_namespaced_custom_object(GROUP, VERSION, apps, "kmskeys", "app").get("status") or {}
            conditions = {c["type"]: c["status"] for c in status.get("conditions") or []}
            return status if conditions.get("Ready") == "True" and status.get("keyId") else None

        status = wait_for(ready, 90, "KMSKey Ready under the chart's RBAC")
        assert kms.call("describe_key", status["keyId"]).description == "under chart RBAC"
        # kopf posts Events from a queue, after the status write that made the key Ready (handlers.py): wait
        wait_for(lambda: core.list_namespaced_event(apps, field_selector="involvedObject.name=app").items, 30,
                 "an Event posted by the operator (it may post Events)")  # fmt: skip

        objects.delete_namespaced_custom_object(GROUP, VERSION, apps, "kmskeys", "app")

        def released() -> bool:
            remaining = objects.list_namespaced_custom_object(GROUP, VERSION, apps, "kmskeys")["items"]
            return not remaining

        wait_for(released, 60, "the finalizer removed after deletion was scheduled")
        assert kms.call("describe_key", status["keyId"]).state == KeyState.PENDING_DELETION
    finally:
        operator.stop()
