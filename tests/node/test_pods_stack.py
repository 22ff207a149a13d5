"""The stack as users deploy it, on the real local node: the static pod of deploy/kind/node/
beside kube-apiserver, ``helm install`` of charts/kubekms with the operator, the server and the
default backend as pods. One install for the module; the tests run in file order (the
uninstall installs again; the kubelet restart comes last).
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from kubekms.backend import KeyState
from kubekms.devenv import staticpod
from kubekms.devenv.controlplane import ControlPlane
from kubekms.devenv.node import Node
from kubekms.devenv.podstack import (
    DEFAULT_BACKEND,
    NODE_CREDENTIALS,
    OPERATOR,
    RELEASE,
    SERVER,
    SERVER_PVC,
    PodPaths,
    PodStack,
    credentials_of,
    pod_stack,
)
from kubekms.devenv.processes import wait_for
from kubekms.devenv.stack import KEY_NAME, NAMESPACE, STORED_PREFIX, gather_evidence, is_ready
from kubekms.providers import BackendConfig, open_backend

pytestmark = pytest.mark.node

OWNER_TAG = "kubekms.io/owner-uid"
CHART_CREDENTIALS = "kubekms-operator-credentials"  # the chart's defaultBackend.credentialsSecret


@pytest.fixture(scope="module")
def stack(node_plane: ControlPlane, node: Node, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PodStack]:
    with pod_stack(node_plane, node, PodPaths(tmp_path_factory.mktemp("pods"))) as running:
        yield running


# --- helpers -----------------------------------------------------------------------------


def pods(stack: PodStack, component: str) -> list[client.V1Pod]:
    selector = f"app.kubernetes.io/instance={RELEASE},app.kubernetes.io/component={component}"
    found: list[client.V1Pod] = (
        client.CoreV1Api(stack.api).list_namespaced_pod(NAMESPACE, label_selector=selector).items
    )
    return found


def ready_pod(stack: PodStack, component: str) -> client.V1Pod:
    def one_ready() -> client.V1Pod | None:
        running = [pod for pod in pods(stack, component) if pod.metadata.deletion_timestamp is None]
        conditions = running[0].status.conditions or [] if len(running) == 1 else []
        ready = any(c.type == "Ready" and c.status == "True" for c in conditions)
        return running[0] if ready else None

    pod: client.V1Pod = wait_for(one_ready, 180, f"one Ready {component} pod")
    return pod


def call_server(stack: PodStack, tmp_path: Path, operation: str, *args: Any) -> Any:
    """A backend call to the in-cluster server (at its pod's IP) as the chart's operator principal."""
    credentials = tmp_path / f"credentials-{uuid.uuid4().hex[:6]}.yaml"
    credentials.write_text(yaml.safe_dump(credentials_of(stack, CHART_CREDENTIALS)))
    credentials.chmod(0o600)
    endpoint = f"http://{ready_pod(stack, 'server').status.pod_ip}:8443"

    async def call() -> Any:
        backend = await open_backend(
            BackendConfig(provider="kubekms", endpoint=endpoint, project_id="default", credentials_file=credentials)
        )
        try:
            return await getattr(backend, operation)(*args)
        finally:
            await backend.close()

    return asyncio.run(call())


def apply_key(stack: PodStack, name: str, spec: dict[str, Any] | None = None) -> None:
    body = {
        "apiVersion": "kubekms.io/v1alpha1",
        "kind": "KMSKey",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": spec or {"description": f"test key {name}"},
    }
    stack.node.kubectl("apply", "-f", "-", stdin=json.dumps(body))


def wait_key_ready(stack: PodStack, name: str) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        status = stack.key_status(name)
        return status if is_ready(status) else None

    found: dict[str, Any] = wait_for(ready, 180, f"KMSKey {name} Ready")
    return found


def secret_material(stack: PodStack) -> list[str]:
    """Every secret the stack holds, in the forms a log could show them."""
    core = client.CoreV1Api(stack.api)
    values = [credentials_of(stack, name)["secret_key"] for name in (CHART_CREDENTIALS, NODE_CREDENTIALS)]
    root_key = base64.b64decode(core.read_namespaced_secret(f"{SERVER}-root-key", NAMESPACE).data["root.key"])
    node_root_key = next(stack.paths.static_pod.state.rglob("root.key")).read_bytes()
    for raw in (root_key, node_root_key):
        values += [raw.hex(), base64.b64encode(raw).decode()]
    return values


def container_id(pod: client.V1Pod, container: str) -> str:
    status = next(s for s in pod.status.container_statuses if s.name == container)
    return str(status.container_id).removeprefix("containerd://")


def restarts(pod: client.V1Pod, container: str) -> int:
    return int(next(s for s in pod.status.container_statuses if s.name == container).restart_count)


# --- the tests ---------------------------------------------------------------------------


def test_operator_and_server_pods_are_ready_non_root_with_their_probes(stack: PodStack) -> None:
    for component, container in (("operator", "operator"), ("server", "server")):
        pod = ready_pod(stack, component)
        spec = next(c for c in pod.spec.containers if c.name == container)
        assert spec.liveness_probe is not None and spec.readiness_probe is not None
        assert spec.security_context.read_only_root_filesystem is True
        assert restarts(pod, container) == 0  # the liveness probe never killed it
        identity = stack.node.kubectl("exec", "-n", NAMESPACE, pod.metadata.name, "-c", container, "--", "id", "-u")
        assert identity.stdout.strip() == "65532"


def test_the_operator_has_only_the_charts_rbac(stack: PodStack) -> None:
    pod = ready_pod(stack, "operator")
    assert pod.spec.service_account_name == OPERATOR
    rbac = client.RbacAuthorizationV1Api(stack.api)
    bindings = [*rbac.list_cluster_role_binding().items, *rbac.list_role_binding_for_all_namespaces().items]
    granting = [
        binding
        for binding in bindings
        if any(
            s.kind == "ServiceAccount" and s.name == OPERATOR and s.namespace == NAMESPACE
            for s in binding.subjects or []
        )
    ]
    assert granting
    for binding in granting:
        labels = binding.metadata.labels or {}
        assert labels.get("app.kubernetes.io/instance") == RELEASE, binding.metadata.name
        assert labels.get("app.kubernetes.io/managed-by") == "Helm"


def test_the_cluster_key_is_ready_through_the_operator_pod(stack: PodStack) -> None:
    status = stack.key_status()
    assert is_ready(status)
    assert status["keyId"]
    raw = stack.plane.etcd_get(f"/registry/secrets/{NAMESPACE}/{NODE_CREDENTIALS}") or b""
    assert raw.startswith(STORED_PREFIX)  # written after kube-apiserver switched to the static pod's plugin


def test_the_evidence_of_dev_up_pods_holds(stack: PodStack) -> None:
    evidence = gather_evidence(stack.plane, stack.api, stack.key_status())
    assert evidence.ok, evidence  # prefix k8s:enc:kms:v2:kubekms:, no plaintext in etcd, read back
    assert evidence.key_id == stack.key_status()["keyId"]


def test_a_kmskey_applied_with_kubectl_becomes_ready_and_its_key_is_in_the_server(
    stack: PodStack, tmp_path: Path
) -> None:
    apply_key(stack, "applied")
    status = wait_key_ready(stack, "applied")
    key = call_server(stack, tmp_path, "describe_key", status["keyId"])
    assert key.key_id == status["keyId"]
    assert key.state is KeyState.ENABLED


def test_killing_the_operator_container_mid_create_leaves_exactly_one_key(stack: PodStack, tmp_path: Path) -> None:
    operator = ready_pod(stack, "operator")
    before = restarts(operator, "operator")
    apply_key(stack, "crashed")
    uid = stack.node.kubectl("get", "kmskey", "crashed", "-n", NAMESPACE, "-o", "jsonpath={.metadata.uid}").stdout

    def being_created() -> bool:  # the operator took the object (finalizer), status not yet written
        body = json.loads(stack.node.kubectl("get", "kmskey", "crashed", "-n", NAMESPACE, "-o", "json").stdout)
        return bool(body["metadata"].get("finalizers")) or bool(body.get("status"))

    wait_for(being_created, 60, "the operator taking KMSKey crashed")
    kill = [
        "ctr",
        "--address",
        str(stack.node.containerd_socket),
        "--namespace",
        "k8s.io",
        "tasks",
        "kill",
        "--signal",
        "SIGKILL",
        container_id(operator, "operator"),
    ]
    subprocess.run(kill, check=True, capture_output=True, timeout=30)
    wait_for(lambda: restarts(ready_pod(stack, "operator"), "operator") > before, 120, "the operator restarted")
    status = wait_key_ready(stack, "crashed")
    created = call_server(stack, tmp_path, "find_keys_by_tag", OWNER_TAG, uid)
    assert [key.key_id for key in created] == [status["keyId"]]


def test_deleting_the_server_pod_keeps_every_key(stack: PodStack, tmp_path: Path) -> None:
    before = sorted(key.key_id for key in call_server(stack, tmp_path, "list_keys").keys)
    assert before
    old = ready_pod(stack, "server")
    client.CoreV1Api(stack.api).delete_namespaced_pod(old.metadata.name, NAMESPACE)
    wait_for(lambda: ready_pod(stack, "server").metadata.uid != old.metadata.uid, 180, "a new server pod Ready")
    after = sorted(key.key_id for key in call_server(stack, tmp_path, "list_keys").keys)
    assert after == before
    apply_key(stack, "after-restart")  # the operator reaches the new pod through the Service
    wait_key_ready(stack, "after-restart")


def test_each_pod_logs_json_and_no_key_material(stack: PodStack) -> None:
    secrets = secret_material(stack)
    mirror = f"{staticpod.POD_NAME}-{stack.node.name}"
    sources = [
        (NAMESPACE, ready_pod(stack, "operator").metadata.name, "operator"),
        (NAMESPACE, ready_pod(stack, "server").metadata.name, "server"),
        (staticpod.NAMESPACE, mirror, "server"),
        (staticpod.NAMESPACE, mirror, "plugin"),
    ]
    for namespace, pod, container in sources:
        logs = stack.node.kubectl("logs", "-n", namespace, pod, "-c", container).stdout
        lines = [line for line in logs.splitlines() if line.strip()]
        assert lines, f"{pod}/{container} logged nothing"
        for line in lines:
            assert isinstance(json.loads(line), dict), f"{pod}/{container}: {line}"
        for secret in secrets:
            assert secret not in logs, f"{pod}/{container} logged key material"


def test_helm_upgrade_keeps_keys_and_generated_secrets(stack: PodStack, tmp_path: Path) -> None:
    core = client.CoreV1Api(stack.api)
    root_key = core.read_namespaced_secret(f"{SERVER}-root-key", NAMESPACE).data
    credentials = credentials_of(stack, CHART_CREDENTIALS)
    keys = sorted(key.key_id for key in call_server(stack, tmp_path, "list_keys").keys)
    old_operator = ready_pod(stack, "operator")
    stack.install_chart("--set", "operator.driftIntervalSeconds=120")
    operator = ready_pod(stack, "operator")
    assert operator.metadata.uid != old_operator.metadata.uid  # the changed flag rolled the Deployment
    assert "--drift-interval=120" in operator.spec.containers[0].args
    assert core.read_namespaced_secret(f"{SERVER}-root-key", NAMESPACE).data == root_key
    assert credentials_of(stack, CHART_CREDENTIALS) == credentials
    assert sorted(key.key_id for key in call_server(stack, tmp_path, "list_keys").keys) == keys
    apply_key(stack, "after-upgrade")
    wait_key_ready(stack, "after-upgrade")


def test_helm_uninstall_leaves_kmskeys_backends_root_key_and_data(stack: PodStack, tmp_path: Path) -> None:
    core = client.CoreV1Api(stack.api)
    keys = sorted(key.key_id for key in call_server(stack, tmp_path, "list_keys").keys)
    stack.helm("uninstall", RELEASE, "--wait")
    wait_for(lambda: not pods(stack, "operator") and not pods(stack, "server"), 120, "the release's pods gone")
    custom = client.CustomObjectsApi(stack.api)
    assert custom.get_namespaced_custom_object("kubekms.io", "v1alpha1", NAMESPACE, "kmskeys", "applied")
    assert custom.get_cluster_custom_object("kubekms.io", "v1alpha1", "kmsbackends", DEFAULT_BACKEND)
    assert core.read_namespaced_secret(f"{SERVER}-root-key", NAMESPACE)  # helm.sh/resource-policy: keep
    assert core.read_namespaced_persistent_volume_claim(SERVER_PVC, NAMESPACE)
    # installed again: the same root key and volume open the same keystore
    stack.install_chart()
    stack.point_default_backend_at_service()
    assert sorted(key.key_id for key in call_server(stack, tmp_path, "list_keys").keys) == keys
    assert is_ready(stack.key_status(KEY_NAME))


def test_static_pod_plugin_encrypts_and_survives_a_kubelet_restart(stack: PodStack) -> None:
    core = client.CoreV1Api(stack.api)
    mirror = f"{staticpod.POD_NAME}-{stack.node.name}"
    before = core.read_namespaced_pod(mirror, staticpod.NAMESPACE)
    stack.node.stop_kubelet()
    try:
        body = client.V1Secret(metadata=client.V1ObjectMeta(name="during-restart"), string_data={"v": "kubelet-down"})
        core.create_namespaced_secret(NAMESPACE, body)  # the plugin works without the kubelet
    finally:
        stack.node.start_kubelet()
    raw = stack.plane.etcd_get(f"/registry/secrets/{NAMESPACE}/during-restart") or b""
    assert raw.startswith(STORED_PREFIX)
    assert b"kubelet-down" not in raw

    def running_again() -> client.V1Pod | None:
        pod = core.read_namespaced_pod(mirror, staticpod.NAMESPACE)
        ready = any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
        return pod if ready else None

    after = wait_for(running_again, 120, "the static pod Ready after the kubelet restart")
    for container in ("server", "plugin"):  # the same containers: the restart did not recreate them
        assert container_id(after, container) == container_id(before, container)
    logs = ("logs", "-n", staticpod.NAMESPACE, mirror, "-c", "plugin")
    wait_for(lambda: stack.node.kubectl(*logs, check=False).returncode == 0, 60, "the kubelet serving logs again")
    core.create_namespaced_secret(NAMESPACE, client.V1Secret(metadata=client.V1ObjectMeta(name="after-restart")))
    assert (stack.plane.etcd_get(f"/registry/secrets/{NAMESPACE}/after-restart") or b"").startswith(STORED_PREFIX)
    value = core.read_namespaced_secret("during-restart", NAMESPACE).data["v"]
    assert base64.b64decode(value) == b"kubelet-down"
